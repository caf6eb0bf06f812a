"""How the CLI shows things: JSON for scripts (the proto's JSON mapping), tables for people,
errors on stderr with the fields they name."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message
from pixelflow.v1 import quota_pb2, task_pb2, worker_pb2
from rich.console import Console
from rich.table import Column, Table

from pixelflow_client.errors import PixelFlowError

out = Console()
err = Console(stderr=True)


def as_dict(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, preserving_proto_field_name=True)


def print_json(value: Any) -> None:
    # One line per value: `jq` and line-oriented tools read it as it comes.
    print(json.dumps(value, separators=(",", ":")), flush=True)  # noqa: T201 - stdout is the interface


def status_name(status: int) -> str:
    return task_pb2.TaskStatus.Name(status).removeprefix("TASK_STATUS_")  # type: ignore[arg-type]


def task_line(task: task_pb2.Task) -> str:
    line = f"{task.id}  {status_name(task.status)}"
    if task.status == task_pb2.TASK_STATUS_COMPLETED:
        result = task.result
        line += f"  {result.width}×{result.height} {result.content_type} {result.size_bytes} bytes"
    elif task.status == task_pb2.TASK_STATUS_FAILED:
        line += f"  {task.error.code}: {task.error.message}"
    return line


def tasks_table(tasks: Iterable[task_pb2.Task]) -> Table:
    table = Table(Column("id", no_wrap=True, min_width=32), "status", "source", "created", "result")
    for task in tasks:
        source = task.source_url or task.upload.filename or task.upload.upload_id
        result = ""
        if task.status == task_pb2.TASK_STATUS_COMPLETED:
            result = f"{task.result.width}×{task.result.height} {task.result.content_type}"
        elif task.status == task_pb2.TASK_STATUS_FAILED:
            result = task.error.code
        created = task.created_at.ToDatetime().strftime("%Y-%m-%d %H:%M:%S") if task.HasField("created_at") else ""
        table.add_row(task.id, status_name(task.status), source, created, result)
    return table


def workers_table(workers: Iterable[worker_pb2.Worker]) -> Table:
    table = Table(
        Column("id", no_wrap=True), "host", "pid", "in flight", "capacity", "processed", "failed", "last heartbeat"
    )
    for worker in workers:
        table.add_row(
            worker.id,
            worker.host,
            str(worker.pid),
            str(worker.in_flight),
            str(worker.capacity),
            str(worker.processed),
            str(worker.failed),
            worker.last_heartbeat.ToDatetime().strftime("%H:%M:%S"),
        )
    return table


def error_lines(error: PixelFlowError) -> list[str]:
    lines = [f"error: {error.message} ({error.code.name})"]
    lines += [f"  {violation.field}: {violation.description}" for violation in error.violations if violation.field]
    lines += [f"  quota {quota.subject}: {quota.description}" for quota in error.quota_violations]
    if error.retry_after is not None:
        lines.append(f"  try again in {error.retry_after:g} s")
    return lines


def print_error(error: PixelFlowError) -> None:
    for line in error_lines(error):
        err.print(line, markup=False, highlight=False)


def usage_table(usage: quota_pb2.Usage) -> Table:
    """Each limit, its value (`*`: an administrator's override) and what is used of it."""
    table = Table(Column("limit", no_wrap=True), "value", "used", "resets")
    for entry in usage.quotas:
        resets = entry.resets_at.ToDatetime().strftime("%Y-%m-%d %H:%M UTC") if entry.HasField("resets_at") else ""
        used = "" if entry.name == "max_upload_bytes" else str(entry.used)
        table.add_row(entry.name, f"{entry.value}{' *' if entry.overridden else ''}", used, resets)
    return table
