"""Throughput and latency of the whole mesh against the engine alone, on the same work.

Run with `python -m bench.mesh_bench` (`make bench`). It starts its own throwaway stack on free
ports and measures, in one run, with medians over rounds:
- engine only: `worker_svc.imaging.process` in a process pool of 2 (this machine's cores);
- mesh: CreateTask → Kafka → worker → MongoDB → COMPLETED (seen through WatchTask), with
  1 worker process × 2 pool processes, then 2 worker processes × 1 pool process each.
The same source (a 12 MP JPEG of a real photograph, served over HTTP on loopback) and the same
job (fit to 800 px → JPEG q85) everywhere. Latency is submit → COMPLETED event; "overhead" is that
minus the worker's own decode+process+encode time for the task. Throughput rounds submit all
tasks at once (latency then includes queueing); the "one at a time" row submits each task after
the previous one completed, which is the latency a lone user sees.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Annotated

import grpc
import typer
from pixelflow.v1 import auth_pb2, auth_pb2_grpc, task_pb2, task_pb2_grpc
from rich.console import Console
from rich.table import Table

from bench.photos import photo
from common.operations import OutputFormat, OutputSpec, Resize, ResizeFit
from infra.infrastructure import make_temp_root
from infra.stack import Stack, StackPorts
from tests.images import ImageServer
from worker_svc.imaging import process

SOURCE_SIZE = (4000, 3000)  # 12 MP, as in the engine benchmark
PASSWORD = "benchmark password"  # noqa: S105 - a throwaway user of a throwaway stack
ENVIRONMENT = {
    "PIXELFLOW_LOG_LEVEL": "WARNING",
    "PIXELFLOW_BCRYPT_ROUNDS": "4",
    "PIXELFLOW_FETCH_ALLOWED_NETWORKS": "127.0.0.1/32",
}


def _engine_job(data: bytes) -> float:
    started = time.perf_counter()
    process(data, [Resize(800, 800, ResizeFit.INSIDE)], OutputSpec(OutputFormat.JPEG, 85, False, False))
    return time.perf_counter() - started


def engine_rate(data: bytes, tasks: int) -> float:
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as pool:
        list(pool.map(_engine_job, [data] * 4))  # warm the pool
        started = time.perf_counter()
        list(pool.map(_engine_job, [data] * tasks))
        return tasks / (time.perf_counter() - started)


async def mesh_round(stack: Stack, url: str, tasks: int, token: str) -> tuple[float, list[float], list[float]]:
    metadata = (("authorization", f"Bearer {token}"),)
    request = task_pb2.CreateTaskRequest(
        source_url=url,
        operations=[task_pb2.Operation(resize=task_pb2.Resize(width=800, height=800, fit=task_pb2.RESIZE_FIT_INSIDE))],
        output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_JPEG, quality=85),
    )
    async with grpc.aio.insecure_channel(stack.address("api_svc")) as channel:
        stub = task_pb2_grpc.TaskServiceStub(channel)

        async def one() -> tuple[float, float]:
            submitted = time.perf_counter()
            task = await stub.CreateTask(request, metadata=metadata)
            final = None
            async for update in stub.WatchTask(task_pb2.WatchTaskRequest(task_id=task.id), metadata=metadata):
                final = update.task
            assert final is not None and final.status == task_pb2.TASK_STATUS_COMPLETED, final
            latency = time.perf_counter() - submitted
            timings = final.result.timings
            work = (timings.decode_ms + timings.process_ms + timings.encode_ms) / 1000
            return latency, latency - work

        started = time.perf_counter()
        results = await asyncio.gather(*(one() for _ in range(tasks)))
        elapsed = time.perf_counter() - started
    return tasks / elapsed, [r[0] for r in results], [r[1] for r in results]


def _login(stack: Stack) -> str:
    with grpc.insecure_channel(stack.address("auth_svc")) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        email = f"bench-{time.time_ns()}@example.com"
        auth.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD))
        return str(auth.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD)).access_token)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main(
    rounds: Annotated[int, typer.Option(min=1)] = 3,
    tasks: Annotated[int, typer.Option(min=1, help="Tasks per round.")] = 60,
) -> None:
    data = photo("JPEG", SOURCE_SIZE)
    engine = [engine_rate(data, tasks) for _ in range(rounds)]
    rows: dict[str, tuple[list[float], list[float], list[float]]] = {}
    server = ImageServer()
    server.serve_bytes("/photo.jpg", data, "image/jpeg")
    root = make_temp_root("pixelflow-bench-")
    with server.running(), Stack(root, StackPorts.free(), throwaway=True, environment=ENVIRONMENT) as stack:
        token = _login(stack)
        configurations = {
            "mesh, 1 worker × 2 processes": ("2", False),
            "mesh, 2 workers × 1 process": ("1", True),
        }
        for name, (concurrency, second_worker) in configurations.items():
            stack.environment["PIXELFLOW_WORKER_CONCURRENCY"] = concurrency
            stack.restart_service("worker_svc")
            extra = stack.add_worker() if second_worker else None
            try:
                asyncio.run(mesh_round(stack, server.url("/photo.jpg"), 12, token))  # warm-up, rebalance
                rates, latencies, overheads = [], [], []
                for _ in range(rounds):
                    rate, latency, overhead = asyncio.run(mesh_round(stack, server.url("/photo.jpg"), tasks, token))
                    rates.append(rate)
                    latencies += latency
                    overheads += overhead
                rows[name] = (rates, latencies, overheads)
                if not second_worker:
                    sequential = [asyncio.run(mesh_round(stack, server.url("/photo.jpg"), 1, token)) for _ in range(20)]
                    rows["one at a time, 1 worker"] = (
                        [r[0] for r in sequential],
                        [r[1][0] for r in sequential],
                        [r[2][0] for r in sequential],
                    )
            finally:
                if extra is not None:
                    extra.stop()

    engine_median = statistics.median(engine)
    table = Table(
        title=f"{tasks} tasks a round, {rounds} rounds, source {SOURCE_SIZE[0]}×{SOURCE_SIZE[1]} JPEG → 800 px JPEG q85"
    )
    for column in ("pipeline", "tasks/s (median)", "× engine only", "latency p50", "latency p95", "overhead p50"):
        table.add_column(column, justify="left" if column == "pipeline" else "right")
    table.add_row("engine only, pool of 2", f"{engine_median:.1f}", "1.00", "", "", "")
    for name, (rates, latencies, overheads) in rows.items():
        median = statistics.median(rates)
        table.add_row(
            name,
            f"{median:.1f}",
            f"{median / engine_median:.2f}",
            f"{_percentile(latencies, 0.5) * 1000:.0f} ms",
            f"{_percentile(latencies, 0.95) * 1000:.0f} ms",
            f"{_percentile(overheads, 0.5) * 1000:.0f} ms",
        )
    Console(width=130).print(table)


if __name__ == "__main__":
    typer.run(main)
