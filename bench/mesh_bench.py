"""The whole mesh against the engine alone, on the same work: throughput, latency and CPU per
task by process.

Run with `python -m bench.mesh_bench` (`make bench`). It starts its own throwaway stack on free
ports and measures, in one run, with medians over rounds:
- engine only: `worker_svc.imaging.process` in a process pool of 2 (this machine's cores), its
  rate and its own CPU time per task (`time.process_time` inside the job): the image work;
- the mesh, for a source by URL and an uploaded source (CreateUpload, then CreateTask with its
  upload_id): CreateTask → Kafka → worker → blob store + MongoDB → COMPLETED seen on WatchTask,
  16 clients at once; the CPU every process of the stack used per task, read from /proc
  (bench.cpu), and the share of it that is image work;
- throughput with 1, 2 and 4 worker processes (one pool process each);
- round trips per task, counted on the wire: store commands by name and collection, Kafka
  records by topic (bench.round_trips);
- a lone task's latency (submit → COMPLETED seen on WatchTask) minus its image work: a 12 MP URL
  source, and a 600×400 upload resized to 300 px.
The same 12 MP JPEG of a real photograph (served over HTTP on loopback for URL sources) and the
same job (fit to 800 px → JPEG q85) everywhere but the small lone task.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from collections.abc import AsyncIterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Annotated

import grpc
import typer
from google.api import httpbody_pb2
from pixelflow.v1 import auth_pb2, auth_pb2_grpc, task_pb2, task_pb2_grpc
from rich.console import Console
from rich.table import Table

from bench.cpu import per_task, snapshot
from bench.photos import photo
from bench.round_trips import CommandCountingProxy, kafka_records
from bench.round_trips import per_task as trips_per_task
from common.kafka import HEARTBEATS_TOPIC
from infra.infrastructure import make_temp_root
from infra.process import ManagedProcess
from infra.stack import Stack, StackPorts
from tasks.operations import OutputFormat, OutputSpec, Resize, ResizeFit
from tests.images import ImageServer
from worker_svc.imaging import process

SOURCE_SIZE = (4000, 3000)  # 12 MP, as in the engine benchmark
PASSWORD = "benchmark password"  # noqa: S105 - a throwaway user of a throwaway stack
ENVIRONMENT = {
    "PIXELFLOW_LOG_LEVEL": "WARNING",
    "PIXELFLOW_BCRYPT_ROUNDS": "4",
    "PIXELFLOW_FETCH_ALLOWED_NETWORKS": "127.0.0.1/32",
}


RESIZE_800 = task_pb2.Operation(resize=task_pb2.Resize(width=800, height=800, fit=task_pb2.RESIZE_FIT_INSIDE))
JPEG_85 = task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_JPEG, quality=85)
CLIENTS = 16


def _engine_job(data: bytes) -> tuple[float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    process(data, [Resize(800, 800, ResizeFit.INSIDE)], OutputSpec(OutputFormat.JPEG, 85, False, False))
    return time.perf_counter() - started, time.process_time() - cpu


def engine_round(data: bytes, tasks: int) -> tuple[float, float]:
    """(tasks/s, CPU seconds per task) of the engine alone in a pool of 2."""
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        list(pool.map(_engine_job, [data] * 4))  # warm the pool
        started = time.perf_counter()
        results = list(pool.map(_engine_job, [data] * tasks))
        rate = tasks / (time.perf_counter() - started)
    return rate, statistics.median(cpu for _, cpu in results)


@dataclass(frozen=True)
class Sample:
    """One task seen from the client, and where its time went (server clocks are the same
    machine's: created_at, started_at and completed_at are written by api_svc and the worker)."""

    latency: float  # submit (upload included) → COMPLETED seen on WatchTask
    overhead: float  # that minus the task's image work (decode + operations + encode)
    stages: dict[str, float]


class Client:
    def __init__(self, stub: task_pb2_grpc.TaskServiceAsyncStub, token: str) -> None:
        self.stub = stub
        self.metadata = (("authorization", f"Bearer {token}"),)

    async def upload(self, data: bytes) -> str:
        async def chunks() -> AsyncIterator[task_pb2.CreateUploadRequest]:
            for start in range(0, len(data), 256 * 1024):
                yield task_pb2.CreateUploadRequest(body=httpbody_pb2.HttpBody(data=data[start : start + 256 * 1024]))

        return str((await self.stub.CreateUpload(chunks(), metadata=self.metadata)).id)

    async def run(self, request: task_pb2.CreateTaskRequest, upload: bytes | None = None) -> Sample:
        submitted = time.perf_counter()
        if upload is not None:
            request = task_pb2.CreateTaskRequest(
                upload_id=await self.upload(upload), operations=request.operations, output=request.output
            )
        uploaded = time.perf_counter()
        task = await self.stub.CreateTask(request, metadata=self.metadata)
        created = time.perf_counter()
        final = None
        async for update in self.stub.WatchTask(task_pb2.WatchTaskRequest(task_id=task.id), metadata=self.metadata):
            final = update.task
        seen, seen_wall = time.perf_counter(), time.time()
        assert final is not None and final.status == task_pb2.TASK_STATUS_COMPLETED, final
        timings = final.result.timings
        image_work = (timings.decode_ms + timings.process_ms + timings.encode_ms) / 1000
        started_at, completed_at = final.started_at.ToNanoseconds() / 1e9, final.completed_at.ToNanoseconds() / 1e9
        stages = {
            "upload": uploaded - submitted,
            "CreateTask call": created - uploaded,
            "created → claimed (store, Kafka, claim)": started_at - final.created_at.ToNanoseconds() / 1e9,
            "claimed → completed, beyond image work": completed_at - started_at - image_work,
            "    fetching the source": timings.fetch_ms / 1000,
            "    to and from the image pool": (timings.total_ms - timings.fetch_ms) / 1000 - image_work,
            "    the rest (claim → run, result stored, outcome recorded)": completed_at
            - started_at
            - timings.total_ms / 1000,
            "completed → seen on WatchTask": seen_wall - completed_at,
        }
        return Sample(seen - submitted, seen - submitted - image_work, stages)


async def mesh_round(
    stack: Stack, token: str, request: task_pb2.CreateTaskRequest, tasks: int, upload: bytes | None = None
) -> tuple[float, list[Sample]]:
    """`tasks` tasks from CLIENTS concurrent clients: (tasks/s, a sample per task)."""
    async with grpc.aio.insecure_channel(stack.address("api_svc")) as channel:
        client = Client(task_pb2_grpc.TaskServiceStub(channel), token)
        slots = asyncio.Semaphore(CLIENTS)

        async def one() -> Sample:
            async with slots:
                return await client.run(request, upload)

        started = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(tasks)))
        return tasks / (time.perf_counter() - started), list(results)


def _login(stack: Stack) -> str:
    with grpc.insecure_channel(stack.address("auth_svc")) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        email = f"bench-{time.time_ns()}@example.com"
        auth.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
        return str(auth.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD)).access_token)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _workers(stack: Stack, count: int) -> list[ManagedProcess]:
    """`count` worker processes with one pool process each; returns the extra ones to stop."""
    stack.environment["PIXELFLOW_WORKER_CONCURRENCY"] = "1"
    stack.restart_service("worker_svc")
    return [stack.add_worker() for _ in range(count - 1)]


PARTS = ("cpu", "lone", "trips", "scaling")


def main(
    rounds: Annotated[int, typer.Option(min=1)] = 3,
    tasks: Annotated[int, typer.Option(min=1, help="Tasks per round.")] = 60,
    parts: Annotated[str, typer.Option(help=f"Comma-separated subset of {','.join(PARTS)}.")] = ",".join(PARTS),
) -> None:
    chosen = [part.strip() for part in parts.split(",") if part.strip()]
    if unknown := set(chosen) - set(PARTS):
        raise typer.BadParameter(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    data = photo("JPEG", SOURCE_SIZE)
    server = ImageServer()
    server.serve_bytes("/photo.jpg", data, "image/jpeg")
    url_request = task_pb2.CreateTaskRequest(
        source_url=server.url("/photo.jpg"), operations=[RESIZE_800], output=JPEG_85
    )
    root = make_temp_root("pixelflow-bench-")
    console = Console(width=140)
    with server.running(), Stack(root, StackPorts.free(), throwaway=True, environment=ENVIRONMENT) as stack:
        token = _login(stack)
        stack.environment["PIXELFLOW_WORKER_CONCURRENCY"] = "2"
        stack.restart_service("worker_svc")
        asyncio.run(mesh_round(stack, token, url_request, 12))  # warm-up
        if "cpu" in chosen:
            _cpu_part(console, stack, token, url_request, data, rounds=rounds, tasks=tasks)
        if "lone" in chosen:
            _lone_part(console, stack, token, url_request)
        if "trips" in chosen:
            _trips_part(console, stack, token, url_request, data)
        if "scaling" in chosen:
            _scaling_part(console, stack, token, url_request, rounds=rounds, tasks=tasks)


def _cpu_part(
    console: Console,
    stack: Stack,
    token: str,
    url_request: task_pb2.CreateTaskRequest,
    data: bytes,
    *,
    rounds: int,
    tasks: int,
) -> None:
    """CPU per task by process, URL and upload sources, 1 worker × 2 pool processes."""
    engine = [engine_round(data, tasks) for _ in range(rounds)]
    engine_rate = statistics.median(rate for rate, _ in engine)
    image_cpu_ms = statistics.median(cpu for _, cpu in engine) * 1000
    breakdown: dict[str, dict[str, float]] = {}
    rates: dict[str, float] = {}
    # The load generator shares the machine: its CPU is not the stack's, but it takes cores.
    clients: dict[str, list[float]] = {}
    for source, upload in (("source by URL", None), ("uploaded source", data)):
        runs = []
        for _ in range(rounds):
            before, client_before = snapshot(stack), time.process_time()
            rate, _ = asyncio.run(mesh_round(stack, token, url_request, tasks, upload))
            runs.append((rate, per_task(before, snapshot(stack), tasks)))
            clients.setdefault(source, []).append((time.process_time() - client_before) * 1000 / tasks)
        rates[source] = statistics.median(rate for rate, _ in runs)
        breakdown[source] = {name: statistics.median(run[name] for _, run in runs) for name in runs[0][1]}
    _print_breakdown(
        console,
        breakdown=breakdown,
        clients={source: statistics.median(values) for source, values in clients.items()},
        rates=rates,
        engine_rate=engine_rate,
        image_cpu_ms=image_cpu_ms,
        tasks=tasks,
        rounds=rounds,
    )


def _small_request() -> task_pb2.CreateTaskRequest:
    return task_pb2.CreateTaskRequest(
        operations=[task_pb2.Operation(resize=task_pb2.Resize(width=300))], output=JPEG_85
    )


def _lone_part(console: Console, stack: Stack, token: str, url_request: task_pb2.CreateTaskRequest) -> None:
    """A lone task: its latency beyond its own image work, and where that time goes."""
    small = photo("JPEG", (600, 400))
    lone: dict[str, list[Sample]] = {"12 MP by URL → 800 px": [], "600×400 upload → 300 px": []}
    for _ in range(15):
        lone["12 MP by URL → 800 px"] += asyncio.run(mesh_round(stack, token, url_request, 1))[1]
        lone["600×400 upload → 300 px"] += asyncio.run(mesh_round(stack, token, _small_request(), 1, small))[1]
    table = Table(title="A lone task, 15 tries each: submit → COMPLETED seen on WatchTask (p50 unless marked)")
    stages = list(next(iter(lone.values()))[0].stages)
    table.add_column("")
    for name in lone:
        table.add_column(name, justify="right")
    rows = {
        "latency": [statistics.median(s.latency for s in samples) for samples in lone.values()],
        "beyond its image work": [statistics.median(s.overhead for s in samples) for samples in lone.values()],
        "beyond its image work, p95": [_percentile([s.overhead for s in samples], 0.95) for samples in lone.values()],
        **{
            f"  {stage}": [statistics.median(s.stages[stage] for s in samples) for samples in lone.values()]
            for stage in stages
        },
    }
    for name, values in rows.items():
        table.add_row(name, *(f"{value * 1000:.1f} ms" for value in values))
    console.print(table)


def _trips_part(
    console: Console, stack: Stack, token: str, url_request: task_pb2.CreateTaskRequest, data: bytes
) -> None:
    """Store commands and Kafka records per task, counted on the wire (bench.round_trips): the
    services talk to the store through a counting proxy for this part only."""
    tries = 20
    counted: dict[str, dict[str, float]] = {}
    with CommandCountingProxy(stack.infra.ferretdb.port).running() as proxy:
        stack.environment["PIXELFLOW_MONGO_URI"] = proxy.uri()
        try:
            for name in ("api_svc", "worker_svc"):
                stack.restart_service(name)
            asyncio.run(mesh_round(stack, token, url_request, 2))  # connections, indexes
            for source, upload in (("source by URL", None), ("uploaded source", data)):
                commands, records = proxy.snapshot(), kafka_records(stack.infra.kafka_bootstrap)
                for _ in range(tries):  # one at a time: nothing else shares the counts
                    asyncio.run(mesh_round(stack, token, url_request, 1, upload))
                store = trips_per_task(commands, proxy.snapshot(), tries)
                kafka = trips_per_task(records, kafka_records(stack.infra.kafka_bootstrap), tries)
                counted[source] = {
                    **{f"store: {name}": value for name, value in store.items()},
                    "store: all commands": sum(store.values()),
                    **{f"kafka: {name}": value for name, value in kafka.items() if name != HEARTBEATS_TOPIC},
                }
        finally:
            del stack.environment["PIXELFLOW_MONGO_URI"]
            for name in ("api_svc", "worker_svc"):
                stack.restart_service(name)
    table = Table(
        title=f"Round trips per task, counted on the wire ({tries} lone tasks each, CreateTask → COMPLETED "
        "seen on WatchTask; worker heartbeats left out)"
    )
    table.add_column("store command / Kafka records of topic")
    for source in counted:
        table.add_column(source, justify="right")
    for name in sorted({name for row in counted.values() for name in row}):
        table.add_row(name, *(f"{row.get(name, 0.0):.2f}" for row in counted.values()))
    console.print(table)


def _scaling_part(
    console: Console, stack: Stack, token: str, url_request: task_pb2.CreateTaskRequest, *, rounds: int, tasks: int
) -> None:
    """Throughput with 1, 2 and 4 worker processes."""
    engine_rate = statistics.median(engine_round(photo("JPEG", SOURCE_SIZE), tasks)[0] for _ in range(rounds))
    table = Table(title=f"Throughput by worker processes (one pool process each), {tasks} URL tasks a round")
    for column in ("worker processes", "tasks/s (median)", "× engine only (pool of 2)"):
        table.add_column(column, justify="right")
    for count in (1, 2, 4):
        extra = _workers(stack, count)
        try:
            asyncio.run(mesh_round(stack, token, url_request, 12))  # warm-up, rebalance
            rate = statistics.median(
                asyncio.run(mesh_round(stack, token, url_request, tasks))[0] for _ in range(rounds)
            )
        finally:
            for process in extra:
                process.stop()
        table.add_row(str(count), f"{rate:.1f}", f"{rate / engine_rate:.2f}")
    console.print(table)


def _print_breakdown(
    console: Console,
    *,
    breakdown: dict[str, dict[str, float]],
    clients: dict[str, float],
    rates: dict[str, float],
    engine_rate: float,
    image_cpu_ms: float,
    tasks: int,
    rounds: int,
) -> None:
    sources = list(breakdown)
    table = Table(
        title=f"CPU per task by process (ms, medians of {rounds} rounds of {tasks} tasks, {CLIENTS} clients; "
        f"{SOURCE_SIZE[0]}×{SOURCE_SIZE[1]} JPEG → 800 px JPEG q85, 1 worker × 2 pool processes)"
    )
    table.add_column("process")
    for source in sources:
        table.add_column(source, justify="right")
    names = sorted({name for run in breakdown.values() for name in run}, key=lambda n: -breakdown[sources[0]].get(n, 0))
    for name in names:
        table.add_row(name, *(f"{breakdown[source].get(name, 0.0):.1f}" for source in sources))
    totals = {source: sum(breakdown[source].values()) for source in sources}
    table.add_row("whole stack", *(f"{totals[source]:.1f}" for source in sources))
    table.add_row(
        "the load generator (this process: clients, image server; not the stack's)",
        *(f"{clients[source]:.1f}" for source in sources),
    )
    table.add_row("image work (the engine's own CPU, in-process)", *(f"{image_cpu_ms:.1f}" for _ in sources))
    table.add_row("share of the stack's CPU doing image work", *(f"{image_cpu_ms / totals[s]:.0%}" for s in sources))
    table.add_row(f"tasks/s (engine only: {engine_rate:.1f})", *(f"{rates[s]:.1f}" for s in sources))
    table.add_row("× engine only", *(f"{rates[s] / engine_rate:.2f}" for s in sources))
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
