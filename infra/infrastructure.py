"""The whole local stack (PostgreSQL, FerretDB on PostgreSQL by default, Kafka with the project topics).

The three servers do not depend on each other, so they start in parallel threads: the stack is
ready when the slowest (Kafka, a JVM) is. Processes are spawned from one long-lived thread
regardless (see :mod:`infra.process`), so starting from worker threads is safe.
"""

import atexit
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

from infra.ferretdb import Backend, FerretDBServer
from infra.kafka import KafkaBroker
from infra.log import say
from infra.postgres import PostgresServer
from infra.process import ManagedProcess, free_ports
from infra.topics import PROJECT_TOPICS, TopicSpec

FERRETDB_DATABASE = "ferretdb"


@dataclass(frozen=True)
class InfraPorts:
    """TCP ports on 127.0.0.1. The defaults are ``make run``'s documented fixed ports."""

    postgres: int = 55432
    ferretdb: int = 27018
    kafka: int = 19092
    kafka_controller: int = 19093

    @classmethod
    def free(cls) -> "InfraPorts":
        """Ports free right now, for tests that must never collide with another run."""
        return cls(*free_ports(4))


def make_temp_root(prefix: str = "pixelflow-infra-") -> Path:
    """A new temporary directory PostgreSQL's user can reach (mkdtemp makes it 0700)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    return root


class Infrastructure:
    """Start/stop the stack under ``root``; use as a context manager.

    ``throwaway=True`` trades durability for speed (no fsync) and wipes the component
    directories at start, so every run begins empty; ``False`` keeps data between runs.
    """

    def __init__(
        self,
        root: Path,
        ports: InfraPorts | None = None,
        throwaway: bool = True,
        topics: Sequence[TopicSpec] = PROJECT_TOPICS,
        ferretdb_backend: Backend = "postgresql",
    ) -> None:
        self.root = root.resolve()
        self.ports = ports or InfraPorts()
        self.throwaway = throwaway
        self.topics = tuple(topics)
        self.postgres = PostgresServer(self.root / "postgres", self.ports.postgres, fsync=not throwaway)
        # FerretDB on PostgreSQL by default: measured 5× the throughput of its SQLite backend
        # under concurrent load (docs/decisions/0011-ferretdb-backend.md). SQLite stays available.
        self.ferretdb = FerretDBServer(
            self.root / "ferretdb",
            self.ports.ferretdb,
            backend=ferretdb_backend,
            postgres_url=self.postgres.dsn_for(FERRETDB_DATABASE),
        )
        self.kafka = KafkaBroker(self.root / "kafka", self.ports.kafka, self.ports.kafka_controller)
        self.timings: dict[str, float] = {}
        self._started: list[str] = []
        self._lock = threading.Lock()

    # -- endpoints ---------------------------------------------------------------------------
    @property
    def postgres_dsn(self) -> str:
        return self.postgres.dsn

    @property
    def mongo_uri(self) -> str:
        return self.ferretdb.uri

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka.bootstrap

    def endpoints(self) -> dict[str, str]:
        return {"postgres": self.postgres_dsn, "mongodb": self.mongo_uri, "kafka": self.kafka_bootstrap}

    def processes(self) -> dict[str, ManagedProcess]:
        """The running managed processes, by component name."""
        found = {
            "postgres": self.postgres.process,
            "ferretdb": self.ferretdb.process,
            "kafka": self.kafka.process,
        }
        return {name: proc for name, proc in found.items() if proc is not None and proc.running}

    def pids(self) -> dict[str, int]:
        return {name: proc.pid for name, proc in self.processes().items() if proc.pid is not None}

    # -- lifecycle ---------------------------------------------------------------------------
    def _start_postgres_then_ferretdb(self) -> None:
        t0 = time.monotonic()
        self.postgres.start()
        with self._lock:
            self.timings["postgres"] = time.monotonic() - t0
            self._started.append("postgres")
        say(f"postgres: started in {self.timings['postgres']:.1f}s")
        self.postgres.create_database(FERRETDB_DATABASE)
        self.ferretdb.start()

    def _start_kafka(self) -> None:
        self.kafka.start()
        self.kafka.ensure_topics(self.topics)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.throwaway:
            for component in ("postgres", "ferretdb", "kafka"):
                shutil.rmtree(self.root / component, ignore_errors=True)
        # Registered first: even a half-started stack is stopped when the interpreter exits.
        atexit.register(self.stop)
        steps: dict[str, Callable[[], None]] = {
            "postgres": self.postgres.start,
            "ferretdb": self.ferretdb.start,
            "kafka": self._start_kafka,
        }
        if self.ferretdb.backend == "postgresql":
            del steps["postgres"]
            steps["ferretdb"] = self._start_postgres_then_ferretdb
        started = time.monotonic()

        def run(name: str, step: Callable[[], None]) -> None:
            t0 = time.monotonic()
            step()
            with self._lock:
                self.timings[name] = time.monotonic() - t0
                self._started.append(name)
            say(f"{name}: started in {self.timings[name]:.1f}s")

        with ThreadPoolExecutor(max_workers=len(steps), thread_name_prefix="infra-start") as pool:
            futures = [pool.submit(run, name, step) for name, step in steps.items()]
            errors = [exc for f in futures if (exc := f.exception()) is not None]
        if errors:
            self.stop()
            raise errors[0]
        self.timings["total"] = time.monotonic() - started
        say(f"infrastructure ready in {self.timings['total']:.1f}s: {self.endpoints()}")

    def stop(self) -> None:
        """Stop in reverse start order. Idempotent; also called from atexit."""
        components: dict[str, PostgresServer | FerretDBServer | KafkaBroker] = {
            "postgres": self.postgres,
            "ferretdb": self.ferretdb,
            "kafka": self.kafka,
        }
        for name in ("kafka", "ferretdb", "postgres"):  # reverse of the start order
            t0 = time.monotonic()
            components[name].stop()
            if name in self._started:
                say(f"{name}: stopped in {time.monotonic() - t0:.1f}s")
        self._started.clear()
        atexit.unregister(self.stop)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def kafka_rss_mib(infra: Infrastructure) -> float | None:
    """Kafka's resident memory in MiB (for reports)."""
    proc = infra.kafka.process
    rss = proc.rss_bytes() if proc is not None else None
    return rss / 2**20 if rss is not None else None


__all__ = ["InfraPorts", "Infrastructure", "kafka_rss_mib", "make_temp_root"]
