"""Where each blob lives: the one place that knows the key layout.

    uploads/<shard>/<upload_id>                  an upload (CreateUpload); feeds any number of tasks
    tasks/<shard>/<task_id>/source               an inline upload, owned by its task
    tasks/<shard>/<task_id>/result-<attempt>     a result; one key per attempt, so a worker that
                                                 lost its task never overwrites the winner's result
    tasks/<shard>/<task_id>/result-<attempt>-<variant>   one variant's result (the same rule)

<shard> is the id's first two hex digits: a filesystem directory never holds more than 256
shards, and S3 spreads the keys over prefixes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

UPLOADS = "uploads/"
TASKS = "tasks/"
_PARSED = re.compile(r"^(?:uploads/[0-9a-f]{2}/(?P<upload>[0-9a-f]{32})|tasks/[0-9a-f]{2}/(?P<task>[0-9a-f]{32})/.+)$")


def upload_key(upload_id: str) -> str:
    return f"{UPLOADS}{upload_id[:2]}/{upload_id}"


def task_prefix(task_id: str) -> str:
    return f"{TASKS}{task_id[:2]}/{task_id}/"


def inline_source_key(task_id: str) -> str:
    return task_prefix(task_id) + "source"


def result_key(task_id: str, attempt: int, variant: str = "") -> str:
    return task_prefix(task_id) + f"result-{attempt}" + (f"-{variant}" if variant else "")


def owned_by_task(key: str, task_id: str) -> bool:
    """True if the blob is the task's own (deleted with it); an upload outlives its tasks."""
    return key.startswith(task_prefix(task_id))


@dataclass(frozen=True)
class Owner:
    kind: Literal["upload", "task"]
    id: str


def owner(key: str) -> Owner | None:
    """Whose blob `key` is; None for a key this layout never writes."""
    match = _PARSED.match(key)
    if match is None:
        return None
    if match["upload"]:
        return Owner("upload", match["upload"])
    return Owner("task", match["task"])
