"""The worker's side of the task document: atomic claims with leases, and conditional finishes
that a stale worker (one whose lease was taken over) cannot win."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection

from common.tasks import TERMINAL, Status, as_utc, utcnow

Document = dict[str, Any]


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    FINISHED = "finished"  # already COMPLETED/FAILED/CANCELLED: acknowledge without work
    LEASED = "leased"  # another worker holds a live lease
    MISSING = "missing"  # no such task (deleted, or a poison message)


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    task: Document | None = None
    lease_until: datetime | None = None

    @property
    def attempt(self) -> int:
        assert self.task is not None
        return int(self.task["attempts"])


class TaskClaims:
    def __init__(self, tasks: AsyncCollection[Document], worker_id: str, lease: timedelta) -> None:
        self._tasks = tasks
        self._worker_id = worker_id
        self._lease = lease

    async def claim(self, task_id: str) -> Claim:
        now = utcnow()
        claimed = await self._tasks.find_one_and_update(
            {
                "_id": task_id,
                "$or": [
                    {"status": Status.PENDING.value},
                    {"status": Status.PROCESSING.value, "lease_until": {"$lt": now}},
                ],
            },
            {
                "$set": {
                    "status": Status.PROCESSING.value,
                    "worker_id": self._worker_id,
                    "lease_until": now + self._lease,
                    "started_at": now,
                    "updated_at": now,
                },
                "$inc": {"attempts": 1},
            },
            return_document=ReturnDocument.AFTER,
        )
        if claimed is not None:
            return Claim(ClaimOutcome.CLAIMED, claimed)
        current = await self._tasks.find_one({"_id": task_id})
        if current is None:
            return Claim(ClaimOutcome.MISSING)
        if Status(current["status"]) in TERMINAL:
            return Claim(ClaimOutcome.FINISHED, current)
        lease_until = current.get("lease_until")
        return Claim(ClaimOutcome.LEASED, current, as_utc(lease_until) if lease_until else now)

    def _mine(self, claim: Claim) -> Document:
        assert claim.task is not None
        return {
            "_id": claim.task["_id"],
            "status": Status.PROCESSING.value,
            "worker_id": self._worker_id,
            "attempts": claim.attempt,
        }

    async def retrying(self, claim: Claim) -> Claim:
        """Counts one more attempt of a claimed task (transient failure, backing off); the lease
        is renewed. Returns the new claim, or a non-CLAIMED outcome if the task was taken away."""
        now = utcnow()
        renewed = await self._tasks.find_one_and_update(
            self._mine(claim),
            {"$set": {"lease_until": now + self._lease, "updated_at": now}, "$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )
        return Claim(ClaimOutcome.CLAIMED, renewed) if renewed is not None else Claim(ClaimOutcome.FINISHED)

    async def complete(self, claim: Claim, result: Document) -> bool:
        now = utcnow()
        done = await self._tasks.update_one(
            self._mine(claim),
            {
                "$set": {
                    "status": Status.COMPLETED.value,
                    "result": result,
                    "completed_at": now,
                    "updated_at": now,
                    "lease_until": None,
                }
            },
        )
        return done.matched_count == 1

    async def fail(self, claim: Claim, code: str, message: str, *, retryable: bool) -> bool:
        now = utcnow()
        done = await self._tasks.update_one(
            self._mine(claim),
            {
                "$set": {
                    "status": Status.FAILED.value,
                    "error": {"code": code, "message": message, "retryable": retryable},
                    "completed_at": now,
                    "updated_at": now,
                    "lease_until": None,
                }
            },
        )
        return done.matched_count == 1

    async def hand_back(self, claim: Claim) -> bool:
        """Shutting down mid-task: PENDING again, so the next owner of the partition claims it at once."""
        done = await self._tasks.update_one(
            self._mine(claim),
            {"$set": {"status": Status.PENDING.value, "worker_id": None, "lease_until": None, "updated_at": utcnow()}},
        )
        return done.matched_count == 1
