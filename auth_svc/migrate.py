"""Applies the Alembic migrations (at start-up, or by `python -m auth_svc migrate`)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def upgrade_to_head(database_url: str) -> None:
    """Blocking (env.py runs its own event loop): call it from a thread inside async code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    # configparser interpolation would read "%" in a password as a directive.
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    command.upgrade(config, "head")
