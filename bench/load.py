"""A load generator: a mixed workload at a target rate for a bounded time, with what it achieved.

Run `python -m bench.load` (`make load`) for a throwaway stack of its own, or `--server HOST:PORT`
against a running gateway (`make run`; URL sources there need the image server's loopback
address allowed: `PIXELFLOW_FETCH_ALLOWED_NETWORKS=127.0.0.1/32 make run`, or `--url-share 0`).

Arrivals are open-loop (Poisson at `--rate` tasks per second, each submitted on time whatever
the ones before are doing), so a slow system shows as latency and a backlog, not as a lower
offered rate. Each arrival is, at random with the shares given: an upload then a task on it, or a
task on a URL; its pipeline one of a few common ones (thumbnail, resize to WebP, crop + grayscale,
AVIF). Every task is followed to its end on WatchTask; extra watchers open WatchTask streams on
recent tasks; a lister pages through ListTasks once a second per user. After `--duration`
seconds arrivals stop and the run waits up to `--drain` seconds for the tasks in flight.

It reports the offered and achieved rates, latency percentiles (create: the CreateTask call, an
upload before it included; end to end: submit → COMPLETED seen on the stream; listing) and the
errors by gRPC code. These are the numbers behind the Helm chart's sizing (decision 0021).
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from typing import Annotated

import grpc
import typer
from pixelflow.v1 import task_pb2
from rich.console import Console
from rich.table import Table

from bench.photos import photo
from infra.infrastructure import make_temp_root
from infra.stack import Stack, StackPorts
from pixelflow_client import AsyncClient, PixelFlowError
from tests.images import ImageServer

PASSWORD = "load generator password"  # noqa: S105 - throwaway users
ENVIRONMENT = {
    "PIXELFLOW_LOG_LEVEL": "WARNING",
    "PIXELFLOW_BCRYPT_ROUNDS": "4",
    "PIXELFLOW_FETCH_ALLOWED_NETWORKS": "127.0.0.1/32",
}
PIPELINES: dict[str, tuple[list[task_pb2.Operation], task_pb2.OutputOptions]] = {
    "thumbnail": (
        [task_pb2.Operation(resize=task_pb2.Resize(width=200, height=200, fit=task_pb2.RESIZE_FIT_COVER))],
        task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_JPEG, quality=80),
    ),
    "webp-800": (
        [task_pb2.Operation(resize=task_pb2.Resize(width=800))],
        task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_WEBP, quality=80),
    ),
    "crop-grey": (
        [
            task_pb2.Operation(crop=task_pb2.Crop(width=600, height=400, gravity=task_pb2.GRAVITY_CENTER)),
            task_pb2.Operation(grayscale=task_pb2.Grayscale()),
        ],
        task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_PNG),
    ),
    "avif-400": (
        [task_pb2.Operation(resize=task_pb2.Resize(width=400))],
        task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_AVIF, quality=60),
    ),
}


@dataclass
class Results:
    create_seconds: list[float] = field(default_factory=list)
    end_to_end_seconds: list[float] = field(default_factory=list)
    list_seconds: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    offered: int = 0
    completed: int = 0
    failed: int = 0
    unfinished: int = 0
    watches: int = 0

    def error(self, what: str, exc: BaseException) -> None:
        code = exc.code if isinstance(exc, PixelFlowError) else type(exc).__name__
        self.errors[f"{what}: {code}"] += 1


def percentile(values: list[float], share: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


class Load:
    def __init__(self, clients: list[AsyncClient], source: bytes, url: str, url_share: float, seed: int) -> None:
        self._clients = clients
        self._source = source
        self._url = url
        self._url_share = url_share
        self._random = random.Random(seed)
        self.results = Results()
        self._recent: list[tuple[AsyncClient, str]] = []

    async def task(self) -> None:
        client = self._random.choice(self._clients)
        operations, output = PIPELINES[self._random.choice(list(PIPELINES))]
        by_url = self._random.random() < self._url_share
        submitted = time.perf_counter()
        try:
            if by_url:
                created = await client.create_task(source_url=self._url, operations=operations, output=output)
            else:
                upload = await client.upload(self._source, filename="load.jpg")
                created = await client.create_task(upload_id=upload.id, operations=operations, output=output)
        except (PixelFlowError, grpc.RpcError) as exc:
            self.results.error("create", exc)
            return
        self.results.create_seconds.append(time.perf_counter() - submitted)
        self._recent = [*self._recent[-31:], (client, created.id)]
        try:
            final = await client.wait_for(created.id)
        except (PixelFlowError, grpc.RpcError) as exc:
            self.results.error("watch", exc)
            return
        if final.status == task_pb2.TASK_STATUS_COMPLETED:
            self.results.completed += 1
            self.results.end_to_end_seconds.append(time.perf_counter() - submitted)
        else:
            self.results.failed += 1
            self.results.errors[f"task: {final.error.code}"] += 1

    async def arrivals(self, rate: float, duration: float) -> list[asyncio.Task[None]]:
        started = time.perf_counter()
        due = started
        jobs: list[asyncio.Task[None]] = []
        while True:
            due += self._random.expovariate(rate)
            if due - started >= duration:
                return jobs
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            self.results.offered += 1
            jobs.append(asyncio.create_task(self.task()))

    async def watcher(self, stop: asyncio.Event) -> None:
        """Watches recent tasks to their end, one after the other (a dashboard left open)."""
        while not stop.is_set():
            if not self._recent:
                await asyncio.sleep(0.2)
                continue
            client, task_id = self._random.choice(self._recent)
            try:
                await client.wait_for(task_id)
                self.results.watches += 1
            except (PixelFlowError, grpc.RpcError) as exc:
                self.results.error("watcher", exc)
            await asyncio.sleep(0.1)

    async def lister(self, client: AsyncClient, stop: asyncio.Event) -> None:
        while not stop.is_set():
            started = time.perf_counter()
            try:
                await anext(aiter(client.list_tasks(page_size=20)), None)  # the first page
                self.results.list_seconds.append(time.perf_counter() - started)
            except (PixelFlowError, grpc.RpcError) as exc:
                self.results.error("list", exc)
            with_rest = max(0.0, 1.0 - (time.perf_counter() - started))
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), with_rest)


async def run(
    server: str, url: str, *, rate: float, duration: float, drain: float, users: int, watchers: int, url_share: float
) -> tuple[Results, float]:
    clients = [AsyncClient(server, retry_seconds=5) for _ in range(users)]
    try:
        for client in clients:
            email = f"load-{uuid.uuid4().hex[:12]}@example.com"
            await client.register(email, PASSWORD)
            await client.login(email, PASSWORD)
        load = Load(clients, photo("jpeg", (1600, 1200), 85), url, url_share, seed=1)
        stop = asyncio.Event()
        background = [asyncio.create_task(load.watcher(stop)) for _ in range(watchers)]
        background += [asyncio.create_task(load.lister(client, stop)) for client in clients]
        started = time.perf_counter()
        jobs = await load.arrivals(rate, duration)
        _, pending = await asyncio.wait(jobs, timeout=drain) if jobs else (set(), set())
        elapsed = time.perf_counter() - started
        load.results.unfinished = len(pending)
        stop.set()
        for job in [*pending, *background]:
            job.cancel()
        await asyncio.gather(*pending, *background, return_exceptions=True)
        return load.results, elapsed
    finally:
        for client in clients:
            await client.close()


def report(results: Results, rate: float, duration: float, elapsed: float) -> dict[str, object]:
    def ms(values: list[float]) -> dict[str, float]:
        return {
            "count": len(values),
            **{f"p{round(q * 100)}_ms": round(percentile(values, q) * 1000, 1) for q in (0.5, 0.9, 0.99)},
            "max_ms": round(max(values) * 1000, 1) if values else float("nan"),
            "mean_ms": round(statistics.fmean(values) * 1000, 1) if values else float("nan"),
        }

    return {
        "target_rate": rate,
        "offered": results.offered,
        "offered_rate": round(results.offered / duration, 2),
        "completed": results.completed,
        "achieved_rate": round(results.completed / elapsed, 2),
        "failed": results.failed,
        "unfinished": results.unfinished,
        "watches": results.watches,
        "create": ms(results.create_seconds),
        "end_to_end": ms(results.end_to_end_seconds),
        "list": ms(results.list_seconds),
        "errors": dict(results.errors),
    }


def print_report(summary: dict[str, object]) -> None:
    console = Console()
    console.print(
        f"offered {summary['offered']} tasks ({summary['offered_rate']}/s of {summary['target_rate']}/s), "
        f"completed {summary['completed']} ({summary['achieved_rate']}/s), failed {summary['failed']}, "
        f"unfinished {summary['unfinished']}; the extra watchers followed {summary['watches']} streams"
    )
    table = Table("latency", "count", "p50 ms", "p90 ms", "p99 ms", "max ms", "mean ms")
    for name in ("create", "end_to_end", "list"):
        row = summary[name]
        assert isinstance(row, dict)
        table.add_row(name, *(str(row[key]) for key in ("count", "p50_ms", "p90_ms", "p99_ms", "max_ms", "mean_ms")))
    console.print(table)
    console.print(f"errors: {summary['errors'] or 'none'}")


@contextmanager
def _target(server: str | None) -> Iterator[tuple[str, str]]:
    """(the gateway, the URL of the source image), for a stack of the run's own or the one given."""
    with ExitStack() as stack:
        images = stack.enter_context(_images())
        if server is None:
            root = make_temp_root("pixelflow-load-")
            running = stack.enter_context(Stack(root, StackPorts.free(), throwaway=True, environment=ENVIRONMENT))
            server = running.gateway_address
        yield server, images.url("/load.jpg")


@contextmanager
def _images() -> Iterator[ImageServer]:
    images = ImageServer()
    images.serve_bytes("/load.jpg", photo("jpeg", (1600, 1200), 85), "image/jpeg")
    with images.running():
        yield images


def main(
    *,
    rate: Annotated[float, typer.Option(min=0.1, help="Tasks per second offered (Poisson arrivals).")] = 4.0,
    duration: Annotated[float, typer.Option(min=1, help="Seconds of arrivals.")] = 60.0,
    drain: Annotated[float, typer.Option(min=0, help="Seconds to wait for tasks in flight after.")] = 60.0,
    users: Annotated[int, typer.Option(min=1, help="Accounts the tasks are spread over.")] = 4,
    watchers: Annotated[int, typer.Option(min=0, help="Extra WatchTask clients.")] = 4,
    url_share: Annotated[float, typer.Option(min=0, max=1, help="Share of tasks by URL (the rest upload).")] = 0.5,
    server: Annotated[str | None, typer.Option(help="A running gateway (default: a stack of its own).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON object instead of tables.")] = False,
) -> None:
    with _target(server) as (gateway, url):
        results, elapsed = asyncio.run(
            run(
                gateway,
                url,
                rate=rate,
                duration=duration,
                drain=drain,
                users=users,
                watchers=watchers,
                url_share=url_share,
            )
        )
    summary = report(results, rate, duration, elapsed)
    if json_out:
        print(json.dumps(summary))
    else:
        print_report(summary)


if __name__ == "__main__":
    typer.run(main)
