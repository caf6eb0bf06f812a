"""Command line: ``python -m infra fetch``, ``run`` (the whole stack) and ``up`` (servers only)."""

import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from infra.cache import ensure_helm, ensure_k8s_validate, fetch_all
from infra.envoy import EnvoyProxy
from infra.infrastructure import InfraPorts, Infrastructure, kafka_rss_mib
from infra.supervisor import Supervisor

app = typer.Typer(add_completion=False, no_args_is_help=True, help="PixelFlow's local infrastructure.")


def _stop_on_signals() -> threading.Event:
    """SIGTERM and Ctrl-C set the event. Installed before anything starts, so that a signal
    during start-up also ends in an orderly stop."""
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop_requested.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    return stop_requested


def _run_until(stop_requested: threading.Event, dead: Callable[[], str | None], logs: Path) -> None:
    """Waits for a stop signal; exits 1 as soon as `dead()` names something that stopped."""
    while not stop_requested.wait(1.0):
        if (what := dead()) is not None:
            typer.echo(f"{what} stopped unexpectedly; see the logs under {logs}", err=True)
            raise typer.Exit(1)


@app.command()
def fetch() -> None:
    """Download and build everything once (later runs find it in the cache)."""
    timings = fetch_all()
    for name, seconds in timings.items():
        typer.echo(f"{name:10} {seconds:6.1f}s")


@app.command("k8s-tools")
def k8s_tools() -> None:
    """Build Helm and the strict manifest validator once (the Helm chart's tests use both)."""
    for name, step in (("helm", ensure_helm), ("k8s-validate", ensure_k8s_validate)):
        started = time.monotonic()
        path = step()
        typer.echo(f"{name:13} {path} ({time.monotonic() - started:.1f}s)")


@app.command()
def up(
    *,
    data_dir: Annotated[Path, typer.Option(help="Where the servers keep their data and logs.")] = Path(".data/infra"),
    throwaway: Annotated[bool, typer.Option(help="Wipe data at start and skip fsync.")] = False,
    postgres_port: int = InfraPorts.postgres,
    ferretdb_port: int = InfraPorts.ferretdb,
    kafka_port: int = InfraPorts.kafka,
    kafka_controller_port: int = InfraPorts.kafka_controller,
    envoy_config: Annotated[Path | None, typer.Option(help="Also run Envoy with this config.")] = None,
    envoy_admin_port: Annotated[int, typer.Option(help="Admin port declared in --envoy-config.")] = 9901,
) -> None:
    """Start the stack, print its endpoints and keep it running until Ctrl-C or SIGTERM."""
    ports = InfraPorts(postgres_port, ferretdb_port, kafka_port, kafka_controller_port)
    stop_requested = _stop_on_signals()
    infra = Infrastructure(data_dir, ports, throwaway=throwaway)
    envoy: EnvoyProxy | None = None
    try:
        infra.start()
        if envoy_config is not None:
            EnvoyProxy.validate(envoy_config)
            envoy = EnvoyProxy(envoy_config, envoy_admin_port, data_dir.resolve() / "envoy")
            envoy.start()
        for name, endpoint in infra.endpoints().items():
            typer.echo(f"{name:9} {endpoint}")
        if envoy is not None:
            typer.echo(f"{'envoy':9} admin {envoy.admin_url}")
        rss = kafka_rss_mib(infra)
        typer.echo(f"started in {infra.timings['total']:.1f}s; Kafka RSS {rss or 0:.0f} MiB. Ctrl-C stops.")
        # processes() lists only the running ones.
        _run_until(stop_requested, lambda: None if len(infra.processes()) == 3 else "a server", data_dir)
    finally:
        if envoy is not None:
            envoy.stop()
        infra.stop()


@app.command()
def run(
    *,
    data_dir: Annotated[Path, typer.Option(help="Where data and logs persist between runs.")] = Path("data"),
) -> None:
    """Start PostgreSQL, FerretDB, Kafka, the three services and Envoy, restart whichever exits
    (infra.supervisor); Ctrl-C stops them all."""
    # Imported here: the stack needs the generated stubs, `fetch` and `up` do not.
    from infra.stack import Stack, StackPorts  # noqa: PLC0415

    stop_requested = _stop_on_signals()
    stack = Stack(data_dir, StackPorts(), throwaway=False)
    try:
        stack.start()
        ports = stack.ports
        rows = [
            ("UI", stack.ui_url if stack.ui is not None else "not built"),
            ("gateway", f"http://{stack.gateway_address}  (REST, gRPC-web, gRPC)"),
            ("API docs", f"{stack.ui_url}/docs/" if stack.ui is not None else "not built"),
            ("auth_svc", stack.address("auth_svc")),
            ("api_svc", stack.address("api_svc")),
            ("worker status", stack.address("worker_svc")),
            ("envoy admin", f"http://127.0.0.1:{ports.envoy_admin}"),
            ("auth metrics", stack.metrics_url("auth_svc")),
            ("api metrics", stack.metrics_url("api_svc")),
            ("worker metrics", stack.metrics_url("worker_svc")),
            ("envoy metrics", stack.envoy_stats_url),
            *stack.infra.endpoints().items(),
            ("blob store", stack.seaweedfs.endpoint_url if stack.seaweedfs is not None else str(stack.blob_dir)),
            ("logs", str(stack.root / "logs")),
        ]
        for name, where in rows:
            typer.echo(f"{name:15} {where}")
        typer.echo("PixelFlow is up. A process that exits is restarted. Ctrl-C stops everything.")
        supervisor = Supervisor(stack.supervised())
        while not stop_requested.wait(1.0):
            supervisor.tick()
    finally:
        stack.stop()


if __name__ == "__main__":
    app()
