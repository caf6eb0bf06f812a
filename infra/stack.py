"""The whole PixelFlow stack: infrastructure, the three services and the Envoy gateway.

`make run` (fixed ports, data kept in ./data) and the test harness (free ports, a throwaway
directory) both start exactly this, so what the tests prove is what a developer runs.
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import TracebackType
from typing import Self

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from gateway.envoy_config import GatewaySettings, Upstream, write
from infra.envoy import EnvoyProxy
from infra.ferretdb import Backend
from infra.infrastructure import InfraPorts, Infrastructure
from infra.log import say
from infra.process import ManagedProcess, free_ports
from infra.seaweedfs import BUCKET as SEAWEEDFS_BUCKET
from infra.seaweedfs import SeaweedFSPorts, SeaweedFSServer
from infra.supervisor import Supervised

REPO_ROOT = Path(__file__).resolve().parent.parent
UI_DIR = REPO_ROOT / "ui"
UI_BUILD = UI_DIR / "dist"
DOCS_BUILD = REPO_ROOT / "gen" / "docs"
AUTH_DATABASE = "pixelflow_auth"


@dataclass(frozen=True)
class StackPorts:
    """The documented defaults of `make run`; `free()` for tests."""

    infra: InfraPorts = field(default_factory=InfraPorts)
    auth: int = 50051
    api: int = 50052
    worker_status: int = 50053
    gateway: int = 8080
    envoy_admin: int = 9901
    ui: int = 3000
    # SeaweedFS (its S3 API first), started only for PIXELFLOW_BLOB_BACKEND=s3 without an endpoint.
    seaweedfs: SeaweedFSPorts = field(default_factory=SeaweedFSPorts)

    @classmethod
    def free(cls) -> StackPorts:
        ports = free_ports(10 + len(fields(SeaweedFSPorts)))
        postgres, ferretdb, kafka, controller, auth, api, worker, gateway, admin, ui = ports[:10]
        infra = InfraPorts(postgres, ferretdb, kafka, controller)
        return cls(infra, auth, api, worker, gateway, admin, ui, SeaweedFSPorts(*ports[10:]))


@dataclass(frozen=True)
class ServiceSpec:
    name: str  # the Python package, run as `python -m <name>`
    port: int
    services: tuple[str, ...]  # gRPC services it serves, for the gateway's routes


class Stack:
    def __init__(
        self,
        root: Path,
        ports: StackPorts | None = None,
        *,
        throwaway: bool,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.root = root.resolve()
        self.ports = ports or StackPorts()
        backend: Backend
        match os.environ.get("PIXELFLOW_FERRETDB_BACKEND", "postgresql"):
            case "postgresql":
                backend = "postgresql"
            case "sqlite":
                backend = "sqlite"
            case other:
                raise ValueError(f"PIXELFLOW_FERRETDB_BACKEND must be postgresql or sqlite, not {other!r}")
        self.infra = Infrastructure(self.root, self.ports.infra, throwaway=throwaway, ferretdb_backend=backend)
        # Extra PIXELFLOW_* settings for the services (tests lower the bcrypt cost, say).
        self.environment = dict(environment or {})
        setting = {**os.environ, **self.environment}.get
        self.blob_backend = setting("PIXELFLOW_BLOB_BACKEND") or "filesystem"
        # What api_svc and worker_svc authenticate each other with: one per stack (it lives as
        # long as the stack's processes do), unless the caller chose one.
        self.internal_secret = setting("PIXELFLOW_INTERNAL_SECRET") or secrets.token_urlsafe(32)
        # The S3 backend on a stack of its own gets a real S3 server of its own, like FerretDB.
        self.seaweedfs = (
            SeaweedFSServer(self.root / "seaweedfs", self.ports.seaweedfs)
            if self.blob_backend == "s3" and not setting("PIXELFLOW_S3_ENDPOINT_URL")
            else None
        )
        self.specs = (
            ServiceSpec("auth_svc", self.ports.auth, ("pixelflow.v1.AuthService",)),
            ServiceSpec(
                "api_svc",
                self.ports.api,
                (
                    "pixelflow.v1.TaskService",
                    "pixelflow.v1.AdminService",
                    "pixelflow.v1.PresetService",
                    "pixelflow.v1.QuotaService",
                    "pixelflow.v1.WebhookService",
                ),
            ),
            ServiceSpec("worker_svc", self.ports.worker_status, ("pixelflow.v1.WorkerStatusService",)),
        )
        self.services: dict[str, ManagedProcess] = {}
        self.envoy: EnvoyProxy | None = None
        self.ui: ManagedProcess | None = None
        self.timings: dict[str, float] = {}

    # -- addresses ---------------------------------------------------------------------------
    def address(self, service: str) -> str:
        return f"127.0.0.1:{next(spec.port for spec in self.specs if spec.name == service)}"

    @property
    def gateway_address(self) -> str:
        return f"127.0.0.1:{self.ports.gateway}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ports.ui}"

    @property
    def auth_database_url(self) -> str:
        # SQLAlchemy names the driver in the scheme.
        return self.infra.postgres.dsn_for(AUTH_DATABASE).replace("postgresql://", "postgresql+asyncpg://", 1)

    @property
    def envoy_config_path(self) -> Path:
        return self.root / "gateway" / "envoy.json"

    @property
    def blob_dir(self) -> Path:
        """The filesystem backend's directory (shared by api_svc and the workers)."""
        return self.root / "blobs"

    def blob_environment(self) -> dict[str, str]:
        if self.seaweedfs is not None:
            return {
                "PIXELFLOW_S3_ENDPOINT_URL": self.seaweedfs.endpoint_url,
                "PIXELFLOW_S3_BUCKET": SEAWEEDFS_BUCKET,
                "PIXELFLOW_S3_ACCESS_KEY_ID": self.seaweedfs.access_key_id,
                "PIXELFLOW_S3_SECRET_ACCESS_KEY": self.seaweedfs.secret_access_key,
            }
        if self.blob_backend == "s3":
            return {}  # an S3 store of the caller's own (PIXELFLOW_S3_* in the environment)
        return {"PIXELFLOW_BLOB_DIR": str(self.blob_dir)}

    def service_environment(self) -> dict[str, str]:
        """The PIXELFLOW_* variables every service is started with."""
        return {
            "PIXELFLOW_BLOB_BACKEND": self.blob_backend,
            **self.blob_environment(),
            "PIXELFLOW_DATA_DIR": str(self.root / "services"),
            "PIXELFLOW_AUTH_PORT": str(self.ports.auth),
            "PIXELFLOW_API_PORT": str(self.ports.api),
            "PIXELFLOW_WORKER_STATUS_PORT": str(self.ports.worker_status),
            "PIXELFLOW_AUTH_DATABASE_URL": self.auth_database_url,
            "PIXELFLOW_MONGO_URI": self.infra.mongo_uri,
            "PIXELFLOW_KAFKA_BOOTSTRAP": self.infra.kafka_bootstrap,
            "PIXELFLOW_AUTH_ADDR": f"127.0.0.1:{self.ports.auth}",
            "PIXELFLOW_API_ADDR": f"127.0.0.1:{self.ports.api}",
            "PIXELFLOW_INTERNAL_SECRET": self.internal_secret,
            "PIXELFLOW_PUBLIC_BASE_URL": f"http://{self.gateway_address}",
            **self.environment,
        }

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        try:
            self.infra.start()
            # After the others, not beside them: its master, volume server and filer open many
            # outgoing connections at start, whose ephemeral ports could take a port another
            # server was given but has not bound yet (seen once: Kafka's controller port).
            if self.seaweedfs is not None:
                self.seaweedfs.start()
            self.infra.postgres.create_database(AUTH_DATABASE)
            started = time.monotonic()
            with ThreadPoolExecutor(len(self.specs)) as pool:
                list(pool.map(self._start_service, self.specs))
            self.timings["services"] = time.monotonic() - started
            started = time.monotonic()
            self._start_gateway()
            self.timings["envoy"] = time.monotonic() - started
            if UI_DIR.joinpath("package.json").exists():
                self._start_ui()
        except BaseException:
            self.stop()
            raise

    def _start_service(self, spec: ServiceSpec) -> None:
        self._spawn(spec.name, spec.name, spec.port, {})
        say(f"{spec.name} serving on 127.0.0.1:{spec.port}")

    def _spawn(self, name: str, module: str, port: int, extra_environment: dict[str, str]) -> ManagedProcess:
        """Runs `python -m module` with the stack's environment; returns once its gRPC health
        check on `port` answers SERVING."""
        process = ManagedProcess(
            name,
            [sys.executable, "-m", module],
            self.root / "logs" / f"{name}.log",
            env={**os.environ, **self.service_environment(), **extra_environment},
            cwd=REPO_ROOT,
        )
        self.services[name] = process
        process.start()
        process.wait_ready(lambda: is_serving(f"127.0.0.1:{port}"), timeout=60)
        return process

    def restart_service(self, name: str) -> None:
        """Starts a service again (after it was stopped or killed), on the same port."""
        previous = self.services.get(name)
        if previous is not None:
            previous.stop()
        self._start_service(next(spec for spec in self.specs if spec.name == name))

    def add_worker(self) -> ManagedProcess:
        """Another worker process (scaling out): it joins the consumer group and shares the
        partitions. Its WorkerStatusService listens on a port of its own. The caller stops it."""
        port = free_ports(1)[0]
        index = sum(1 for name in self.services if name.startswith("worker_svc"))
        return self._spawn(f"worker_svc-{index}", "worker_svc", port, {"PIXELFLOW_WORKER_STATUS_PORT": str(port)})

    def kill_service(self, name: str) -> None:
        """SIGKILL to the service's whole process group (its process pool included): a crash."""
        process = self.services[name]
        assert process.pid is not None
        os.killpg(process.pid, signal.SIGKILL)
        process.stop(timeout=5)

    def gateway_settings(self) -> GatewaySettings:
        return GatewaySettings(
            listen_host="127.0.0.1",
            listen_port=self.ports.gateway,
            admin_port=self.ports.envoy_admin,
            upstreams=tuple(Upstream(spec.name, spec.services, "127.0.0.1", spec.port) for spec in self.specs),
            cors_origins=(self.ui_url, f"http://localhost:{self.ports.ui}"),
        )

    def _start_gateway(self) -> None:
        config = write(self.gateway_settings(), self.envoy_config_path)
        EnvoyProxy.validate(config)
        self.envoy = EnvoyProxy(config, self.ports.envoy_admin, self.root / "gateway")
        self.envoy.start()
        say(f"envoy gateway on {self.gateway_address} (admin http://127.0.0.1:{self.ports.envoy_admin})")

    def _start_ui(self) -> None:
        if not (UI_BUILD / "index.html").is_file():
            raise RuntimeError(f"the UI is not built ({UI_BUILD} has no index.html): run `make ui`")
        argv = [sys.executable, "-m", "infra.ui_server", "--root", str(UI_BUILD), "--port", str(self.ports.ui)]
        argv += ["--gateway-url", f"http://{self.gateway_address}"]
        # The browser checks uploads against the API's own limit before sending them.
        max_upload = self.service_environment().get("PIXELFLOW_MAX_UPLOAD_BYTES") or os.environ.get(
            "PIXELFLOW_MAX_UPLOAD_BYTES"
        )
        if max_upload:
            argv += ["--max-upload-bytes", max_upload]
        if (DOCS_BUILD / "index.html").is_file():
            argv += ["--docs-root", str(DOCS_BUILD)]
        self.ui = ManagedProcess("ui", argv, self.root / "logs" / "ui.log", cwd=REPO_ROOT)
        self.ui.start()
        self.ui.wait_ready(lambda: httpx.get(f"{self.ui_url}/config.json", timeout=1).status_code == 200, timeout=20)
        say(f"ui on {self.ui_url}")

    def supervised(self) -> list[Supervised]:
        """Every process of the running stack, with how to start it again (infra.supervisor)."""
        infra = self.infra
        units = [
            Supervised("postgres", lambda: infra.postgres.process, infra.postgres.start),
            Supervised("ferretdb", lambda: infra.ferretdb.process, infra.ferretdb.start),
            Supervised("kafka", lambda: infra.kafka.process, infra.kafka.start),
        ]
        if self.seaweedfs is not None:
            seaweedfs = self.seaweedfs
            units.append(Supervised("seaweedfs", lambda: seaweedfs.process, seaweedfs.start))
        units += [self._supervised_service(spec.name) for spec in self.specs]
        if self.envoy is not None:
            envoy = self.envoy
            units.append(Supervised("envoy", lambda: envoy.process, envoy.start))
        if self.ui is not None:
            units.append(Supervised("ui", lambda: self.ui, self._start_ui))
        return units

    def _supervised_service(self, name: str) -> Supervised:
        def process() -> ManagedProcess | None:
            return self.services.get(name)

        def restart() -> None:
            self.restart_service(name)

        return Supervised(name, process, restart)

    def stop(self) -> None:
        if self.ui is not None:
            self.ui.stop()
        if self.envoy is not None:
            self.envoy.stop()
        for process in reversed(list(self.services.values())):
            process.stop()
        if self.seaweedfs is not None:
            self.seaweedfs.stop()
        self.infra.stop()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def is_serving(address: str) -> bool:
    """True if the gRPC health service at `address` answers SERVING."""
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
        return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)
