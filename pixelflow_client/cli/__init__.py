"""The `pixelflow` command (a console script: `make deps` installs it into .venv)."""

from pixelflow_client.cli.app import main

__all__ = ["main"]
