"""Task-status events on Kafka (`task-status`, key = task id): what changed, not only that
something did.

An event carries the task document as its writer has just stored it (the writer holds it: a
worker read it to claim the task, the API to cancel it), so a watcher takes it instead of
reading the task again: one round trip to the store saved per event per watcher, and a lost
earlier event costs nothing, since every event is whole. BSON, not JSON: the document holds
datetimes and nested documents exactly as the store does.

A writer sends an event only after its store write succeeded, and only one writer ever records
a terminal state (tasks.lifecycle), so a terminal event is final. Events of one task come
from different producers (the API cancels, workers claim and finish), so they can arrive out
of order: `verdict` merges only an event that moves the task forward, ignores one already
overtaken, and has the watcher read the task again when it cannot tell.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from bson.errors import BSONError

from tasks.model import Status, from_bson, to_bson


class Verdict(enum.Enum):
    APPLY = "apply"  # newer than the watcher's copy: merge it
    STALE = "stale"  # already reflected (or overtaken): nothing to do
    REREAD = "reread"  # cannot be ordered against the copy: read the task


@dataclass(frozen=True)
class StatusEvent:
    task_id: str
    status: Status
    # The whole task document as written with this status.
    document: dict[str, Any]

    def encode(self) -> bytes:
        return to_bson({"task_id": self.task_id, "status": self.status.value, "task": self.document})

    @classmethod
    def decode(cls, value: bytes | None) -> StatusEvent | None:
        """None for anything that is not an event of this format (the reader re-reads the task)."""
        try:
            raw = from_bson(value or b"")
            event = cls(str(raw["task_id"]), Status(raw["status"]), dict(raw["task"]))
        except (BSONError, KeyError, ValueError, TypeError):
            return None
        return event

    def verdict(self, document: dict[str, Any]) -> Verdict:
        """What a watcher holding `document` does with this event."""
        current = Status(document["status"])
        if current.terminal:
            return Verdict.STALE
        if self.status.terminal:
            return Verdict.APPLY
        if self.status is Status.PROCESSING:
            if current is Status.PENDING:
                return Verdict.APPLY
            newer = int(self.document.get("attempts", 0)) > int(document.get("attempts", 0))
            return Verdict.APPLY if newer else Verdict.STALE
        return Verdict.REREAD  # back to PENDING (a hand-back): not orderable from here

    def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        return {**document, **self.document, "status": self.status.value}
