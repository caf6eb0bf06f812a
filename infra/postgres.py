"""A local PostgreSQL 15 server in a directory of our choosing.

``initdb`` and ``postgres`` refuse to run as root, so as root they run as the ``postgres`` user
(which then owns the data dir); as any other user they run as that user. The server is started
directly (``postgres -D``), not with ``pg_ctl``, so it stays our child and dies with us (see
:mod:`infra.process`). Settings are passed as ``-c`` options rather than written to
``postgresql.conf`` so a kept cluster can be started again on other ports.
"""

import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

from infra.cache import ensure_postgres
from infra.log import say
from infra.process import ManagedProcess

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class PostgresServer:
    """PostgreSQL on ``127.0.0.1:port`` with its cluster in ``data_dir/cluster``.

    ``fsync=False`` (throwaway data) also turns off synchronous commit and full-page writes.
    An existing cluster in ``data_dir`` is reused.
    """

    def __init__(self, data_dir: Path, port: int, fsync: bool = True, bin_dir: Path | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.fsync = fsync
        self._bin_dir = bin_dir
        # Root may not run the server; another user runs it as itself.
        self.os_user: str | None = "postgres" if os.geteuid() == 0 else None
        self.process: ManagedProcess | None = None

    @property
    def cluster_dir(self) -> Path:
        return self.data_dir / "cluster"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def user(self) -> str:
        return "postgres"

    @property
    def dsn(self) -> str:
        return self.dsn_for("postgres")

    def dsn_for(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def bin_dir(self) -> Path:
        if self._bin_dir is None:
            self._bin_dir = ensure_postgres()
        return self._bin_dir

    def _as_server_user(self, argv: list[str]) -> list[str]:
        return ["runuser", "-u", self.os_user, "--", *argv] if self.os_user else argv

    def _prepare_dirs(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.os_user is None:
            return
        entry = pwd.getpwnam(self.os_user)
        # The socket directory and the cluster must belong to the server's user.
        os.chown(self.data_dir, entry.pw_uid, entry.pw_gid)
        reachable = (
            subprocess.run(self._as_server_user(["test", "-w", str(self.data_dir)]), check=False).returncode == 0
        )
        if not reachable:
            raise RuntimeError(
                f"PostgreSQL runs as user {self.os_user!r}, which cannot reach {self.data_dir}: every "
                "parent directory must be traversable (o+x). pytest's tmp_path is not; use "
                "infra.make_temp_root()."
            )

    def _initdb(self) -> None:
        if (self.cluster_dir / "PG_VERSION").is_file():
            return
        shutil.rmtree(self.cluster_dir, ignore_errors=True)  # a half-made cluster is useless
        started = time.monotonic()
        result = subprocess.run(
            self._as_server_user(
                [
                    str(self.bin_dir / "initdb"),
                    "-D",
                    str(self.cluster_dir),
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                    "--no-instructions",
                    *([] if self.fsync else ["--no-sync"]),
                ]
            ),
            check=False,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed:\n{result.stdout}")
        say(f"postgres: initdb {self.cluster_dir} in {time.monotonic() - started:.1f}s")

    def start(self, timeout: float = 30.0) -> None:
        self._prepare_dirs()
        self._initdb()
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.data_dir),
            "max_connections": "200",
        }
        if not self.fsync:
            settings |= {"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"}
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.cluster_dir)]
        for key, value in settings.items():
            argv += ["-c", f"{key}={value}"]
        self.process = ManagedProcess(
            "postgres",
            argv,
            self.data_dir / "postgres.log",
            user=self.os_user,
            # SIGINT is PostgreSQL's "fast shutdown"; SIGTERM would wait for clients to leave.
            stop_signal=signal.SIGINT,
            death_signal=signal.SIGINT,
        )
        self.process.start()
        try:
            self.process.wait_ready(self._accepting, timeout)
        except BaseException:
            self.process.stop()
            raise

    def _accepting(self) -> bool:
        probe = [str(self.bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(self.port), "-t", "1"]
        return subprocess.run(probe, check=False).returncode == 0

    def psql(self, sql: str, database: str = "postgres") -> str:
        """Run SQL with ``psql`` (synchronous, no event loop needed); return unaligned output."""
        result = subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                "postgres",
                "-d",
                database,
                "-c",
                sql,
            ],
            check=False,
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise RuntimeError(f"psql failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def create_database(self, name: str) -> None:
        """Create database ``name`` unless it exists (the name must be a plain identifier)."""
        if not _IDENTIFIER.match(name):
            raise ValueError(f"not a plain SQL identifier: {name!r}")
        # Safe to interpolate: the name was checked against _IDENTIFIER above.
        if self.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'") == "1":  # noqa: S608
            return
        try:
            self.psql(f'CREATE DATABASE "{name}"')
        except RuntimeError as exc:
            if "already exists" not in str(exc):  # lost a race with another creator: fine
                raise

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(timeout=30.0)
