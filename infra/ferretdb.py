"""FerretDB v1: the MongoDB wire protocol over SQLite (or PostgreSQL), from our Go wrapper.

No MongoDB server is packaged on any registry we can reach; FerretDB speaks enough of the
protocol for PixelFlow's task store, and the same code runs against real MongoDB in
docker-compose.
"""

from pathlib import Path
from typing import Literal

from pymongo import MongoClient

from infra.cache import ensure_ferretdb
from infra.process import ManagedProcess

Backend = Literal["sqlite", "postgresql"]


class FerretDBServer:
    """FerretDB on ``127.0.0.1:port``; SQLite files in ``data_dir/sqlite`` for that backend."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        backend: Backend = "sqlite",
        postgres_url: str | None = None,
        binary: Path | None = None,
    ) -> None:
        if backend == "postgresql" and not postgres_url:
            raise ValueError("the postgresql backend needs postgres_url")
        self.data_dir = data_dir.resolve()
        self.port = port
        self.backend = backend
        self.postgres_url = postgres_url
        self._binary = binary
        self.process: ManagedProcess | None = None

    @property
    def uri(self) -> str:
        # directConnection: a single server, no replica-set discovery (FerretDB has none).
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @property
    def binary(self) -> Path:
        if self._binary is None:
            self._binary = ensure_ferretdb()
        return self._binary

    def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [str(self.binary), "-listen-addr", f"127.0.0.1:{self.port}", "-handler", self.backend]
        if self.backend == "sqlite":
            sqlite_dir = self.data_dir / "sqlite"
            sqlite_dir.mkdir(exist_ok=True)  # FerretDB requires it to exist
            argv += ["-sqlite-url", f"file:{sqlite_dir}/"]
        else:
            argv += ["-postgresql-url", str(self.postgres_url)]
        self.process = ManagedProcess("ferretdb", argv, self.data_dir / "ferretdb.log", cwd=self.data_dir)
        self.process.start()
        try:
            self.process.wait_ready(self._ping, timeout)
        except BaseException:
            self.process.stop()
            raise

    def _ping(self) -> bool:
        client: MongoClient[dict[str, object]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500
        )
        try:
            client.admin.command("ping")
            return True
        finally:
            client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
