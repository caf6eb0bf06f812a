"""`pixelflow submit`: many images through one pipeline. Uploads run a bounded number at a time,
each task is watched (WatchTask) until it ends, results stream into --out; a live display counts
every stage.

Ctrl-C stops it cleanly: uploads, watches and downloads stop at once (an upload cut short stores
nothing, a download cut short leaves no file), but a CreateTask already sent is answered first,
so every task that exists on the server is reported; they keep running there. A second Ctrl-C
stops without waiting for those answers."""

from __future__ import annotations

import asyncio
import enum
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pixelflow.v1 import task_pb2
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from pixelflow_client.aio import AsyncClient
from pixelflow_client.cli.inputs import Input, OutputNames
from pixelflow_client.cli.render import as_dict, error_lines, print_json, status_name
from pixelflow_client.errors import PixelFlowError

# Open WatchTask streams at once: below the service's per-user cap (32 per replica), leaving
# room for a browser tab or another command of the same user.
WATCHES = 16


class Stage(enum.StrEnum):
    WAITING = "waiting"
    UPLOADING = "uploading"
    UPLOADED = "uploaded"
    QUEUED = "queued"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"


FINAL = frozenset({Stage.DONE, Stage.FAILED})
_STAGE_OF = {
    task_pb2.TASK_STATUS_PENDING: Stage.QUEUED,
    task_pb2.TASK_STATUS_PROCESSING: Stage.PROCESSING,
    task_pb2.TASK_STATUS_COMPLETED: Stage.DONE,
    task_pb2.TASK_STATUS_FAILED: Stage.FAILED,
    task_pb2.TASK_STATUS_CANCELLED: Stage.FAILED,
}


@dataclass
class Item:
    input: Input
    stage: Stage = Stage.WAITING
    task: task_pb2.Task | None = None
    # Where each result went: "" for the task's one result, else a variant's name.
    outputs: dict[str, Path] = field(default_factory=dict)
    error: str = ""
    # Between sending CreateTask and its answer: a first Ctrl-C lets the answer arrive.
    creating: bool = False
    runner: asyncio.Task[None] | None = None

    def record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"source": self.input.label, "stage": self.stage.value}
        if self.task is not None:
            record |= {"task_id": self.task.id, "status": status_name(self.task.status)}
            if self.task.HasField("result"):
                record["result"] = as_dict(self.task.result)
        if "" in self.outputs:
            record["output"] = str(self.outputs[""])
        elif self.outputs:
            record["outputs"] = {name: str(path) for name, path in self.outputs.items()}
        if self.error:
            record["error"] = self.error
        return record


@dataclass
class SubmitRun:
    client: AsyncClient
    template: task_pb2.CreateTaskRequest
    items: list[Item]
    wait: bool
    out: Path | None
    parallel: int
    json_lines: bool
    console: Console
    started: float = field(default_factory=time.monotonic)
    interrupted: bool = False

    async def execute(self) -> None:
        names = OutputNames(self.out) if self.out is not None else None
        uploads = asyncio.Semaphore(self.parallel)
        watches = asyncio.Semaphore(WATCHES)
        with self._progress() as progress:
            bar = progress.add_task("images", total=len(self.items), counts="")

            def refresh() -> None:
                finished = sum(item.stage in FINAL for item in self.items)
                submitted = sum(item.task is not None for item in self.items)
                progress.update(bar, completed=finished if self.wait else submitted, counts=self._counts())

            async def one(item: Item) -> None:
                try:
                    await self._run(item, uploads, watches, names, refresh)
                except asyncio.CancelledError:
                    pass  # interrupted: the record and the summary say how far it got
                except PixelFlowError as error:
                    # With what the server attached: the quota passed and when to try again.
                    reasons = [f"{error.code.name}: {error.message}", *error_lines(error)[1:]]
                    item.stage, item.error = Stage.FAILED, "\n".join(reasons)
                    refresh()
                # One line per input, as each ends (or stops): a script reads every task id.
                if self.json_lines:
                    print_json(item.record())
                elif item.stage == Stage.FAILED:
                    self.console.print(f"[red]failed[/red] {item.input.label}: {item.error}", highlight=False)

            for item in self.items:
                item.runner = asyncio.create_task(one(item))
            loop = asyncio.get_running_loop()
            loop.add_signal_handler(signal.SIGINT, self.interrupt)
            try:
                await asyncio.gather(*(item.runner for item in self.items if item.runner is not None))
            finally:
                loop.remove_signal_handler(signal.SIGINT)

    def interrupt(self) -> None:
        """Ctrl-C: stop everything but the CreateTask calls awaiting their answer; the second
        time, those too."""
        again, self.interrupted = self.interrupted, True
        for item in self.items:
            if item.runner is not None and (again or not item.creating):
                item.runner.cancel()

    async def _run(
        self,
        item: Item,
        uploads: asyncio.Semaphore,
        watches: asyncio.Semaphore,
        names: OutputNames | None,
        refresh: Callable[[], None],
    ) -> None:
        request = task_pb2.CreateTaskRequest()
        request.CopyFrom(self.template)
        async with uploads:
            if item.input.path is not None:
                item.stage = Stage.UPLOADING
                refresh()
                upload = await self.client.upload(item.input.path)
                request.upload_id = upload.id
                item.stage = Stage.UPLOADED
                refresh()
            else:
                request.source_url = item.input.url
            item.creating = True
            try:
                item.task = await self.client.submit(request)
            finally:
                item.creating = False
        self._follow(item, item.task)
        refresh()
        if not self.wait or self.interrupted:
            return
        async with watches:
            async for task in self.client.watch_task(item.task.id):
                self._follow(item, task)
                refresh()
        if item.task.status != task_pb2.TASK_STATUS_COMPLETED or names is None:
            return
        if not item.task.variant_results:
            item.outputs[""] = names.claim(item.input.stem, item.task.result.format)
            await self.client.download(item.task.id, item.outputs[""])
        for each in item.task.variant_results:  # photo-thumb.webp, photo-large.jpg, ...
            path = names.claim(item.input.stem.with_name(f"{item.input.stem.name}-{each.name}"), each.result.format)
            item.outputs[each.name] = path
            await self.client.download(item.task.id, path, variant=each.name)

    def _follow(self, item: Item, task: task_pb2.Task) -> None:
        item.task = task
        item.stage = _STAGE_OF.get(task.status, Stage.QUEUED)
        if task.status == task_pb2.TASK_STATUS_FAILED:
            item.error = f"{task.error.code}: {task.error.message}"
        elif task.status == task_pb2.TASK_STATUS_CANCELLED:
            item.error = "cancelled"

    def _counts(self) -> str:
        stages = Counter(item.stage for item in self.items)
        uploaded = sum(item.task is not None or item.stage == Stage.UPLOADED for item in self.items if item.input.path)
        done = stages[Stage.DONE]
        rate = done / max(time.monotonic() - self.started, 1e-9)
        return (
            f"uploaded {uploaded} · queued {stages[Stage.QUEUED]} · processing {stages[Stage.PROCESSING]} · "
            f"done {done} · failed {stages[Stage.FAILED]} · {rate:.1f}/s"
        )

    def _progress(self) -> Progress:
        return Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )

    def summary(self) -> list[str]:
        stages = Counter(item.stage for item in self.items)
        submitted = [item for item in self.items if item.task is not None]
        done, failed = stages[Stage.DONE], stages[Stage.FAILED]
        lines = [f"{len(submitted)} of {len(self.items)} submitted · done {done} · failed {failed}"]
        if self.out is not None and stages[Stage.DONE]:
            lines.append(f"results in {self.out}")
        running = [item for item in submitted if item.stage not in FINAL]
        if self.interrupted:
            lines.insert(0, "interrupted")
            if running:
                lines.append(f"{len(running)} submitted task(s) keep running on the server (`pixelflow watch ID`):")
                lines += [f"  {item.task.id}  {item.input.label}" for item in running if item.task is not None]
            unsent = [item for item in self.items if item.task is None and item.stage not in FINAL]
            if unsent:
                lines.append(f"{len(unsent)} not submitted")
        return lines

    @property
    def failed(self) -> bool:
        return any(item.stage == Stage.FAILED for item in self.items)
