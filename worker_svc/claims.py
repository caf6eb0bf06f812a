"""The worker's side of a task: claims with leases and finishes, exactly once per attempt and
per task even though the store's conditional updates are not atomic (see common.task_locks)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from common.task_locks import Locks, attempt_lease, final_outcome, finish, take_attempt
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

    @property
    def attempt(self) -> int:
        assert self.task is not None
        return int(self.task["attempts"])


class TaskClaims:
    def __init__(self, tasks: AsyncCollection[Document], locks: Locks, worker_id: str, lease: timedelta) -> None:
        self._tasks = tasks
        self._locks = locks
        self._worker_id = worker_id
        self._lease = lease

    async def claim(self, task_id: str) -> Claim:
        current = await self._tasks.find_one({"_id": task_id})
        if current is None:
            return Claim(ClaimOutcome.MISSING)
        if Status(current["status"]) in TERMINAL:
            return Claim(ClaimOutcome.FINISHED, current)
        now = utcnow()
        lease_until = current.get("lease_until")
        if current["status"] == Status.PROCESSING.value and lease_until is not None and as_utc(lease_until) > now:
            return Claim(ClaimOutcome.LEASED, current)
        attempt = int(current.get("attempts", 0)) + 1
        # The document may lag behind the locks (a lost update): skip attempts whose owner's
        # lease has run out; stop at one that is still held.
        while not await take_attempt(self._locks, task_id, attempt, self._worker_id, now + self._lease):
            held_until = await attempt_lease(self._locks, task_id, attempt)
            if held_until is not None and held_until > now:
                return Claim(ClaimOutcome.LEASED, current)
            attempt += 1
        fields = {
            "status": Status.PROCESSING.value,
            "worker_id": self._worker_id,
            "attempts": attempt,
            "lease_until": now + self._lease,
            "started_at": now,
            "updated_at": now,
        }
        await self._tasks.update_one({"_id": task_id}, {"$set": fields})
        # Checked after our write: a Cancel that took its lock before it is seen here; one that
        # takes it later writes CANCELLED after our write (and we notice before finishing).
        if await self._settle_if_final(task_id):
            return Claim(ClaimOutcome.FINISHED, current)
        return Claim(ClaimOutcome.CLAIMED, {**current, **fields})

    async def _settle_if_final(self, task_id: str) -> bool:
        """True if the task already has its terminal outcome. A CANCELLED whose document write
        was lost to a concurrent claim (non-atomic updates) is written again, so the task never
        stays PROCESSING under a cancel."""
        outcome = await final_outcome(self._locks, task_id)
        if outcome is None:
            return False
        if outcome == Status.CANCELLED.value:
            fields = {"status": outcome, "lease_until": None, "updated_at": utcnow()}
            await self._tasks.update_one({"_id": task_id, "status": {"$ne": outcome}}, {"$set": fields})
        return True

    async def retrying(self, claim: Claim) -> Claim:
        """Starts the next attempt of a task this worker holds (a transient failure, after the
        backoff); a non-CLAIMED outcome if the task was finished or taken meanwhile."""
        assert claim.task is not None
        task_id = claim.task["_id"]
        if not await self._still_mine(claim):
            return Claim(ClaimOutcome.FINISHED)
        now = utcnow()
        if not await take_attempt(self._locks, task_id, claim.attempt + 1, self._worker_id, now + self._lease):
            return Claim(ClaimOutcome.LEASED)
        fields = {"attempts": claim.attempt + 1, "lease_until": now + self._lease, "updated_at": now}
        await self._tasks.update_one({"_id": task_id}, {"$set": fields})
        return Claim(ClaimOutcome.CLAIMED, {**claim.task, **fields})

    async def complete(self, claim: Claim, result: Document) -> Document | None:
        """Records the result unless the task was cancelled, deleted, finished or taken over;
        returns the fields written."""
        return await self._finish(claim, Status.COMPLETED, {"result": result})

    async def fail(self, claim: Claim, code: str, message: str, *, retryable: bool) -> Document | None:
        error = {"code": code, "message": message, "retryable": retryable}
        return await self._finish(claim, Status.FAILED, {"error": error})

    async def hand_back(self, claim: Claim) -> bool:
        """Shutting down mid-task: PENDING again, so the next owner of the partition claims it at once."""
        assert claim.task is not None
        if not await self._still_mine(claim):
            return False
        fields = {"status": Status.PENDING.value, "worker_id": None, "lease_until": None, "updated_at": utcnow()}
        await self._tasks.update_one({"_id": claim.task["_id"]}, {"$set": fields})
        return True

    async def _still_mine(self, claim: Claim) -> bool:
        assert claim.task is not None
        current = await self._tasks.find_one({"_id": claim.task["_id"]})
        return (
            current is not None
            and current["status"] == Status.PROCESSING.value
            and current.get("worker_id") == self._worker_id
            and int(current.get("attempts", 0)) == claim.attempt
        )

    async def _finish(self, claim: Claim, status: Status, fields: Document) -> Document | None:
        assert claim.task is not None
        task_id = claim.task["_id"]
        # Read first, although the write checks the same guard: a worker that lost the task
        # must not take the final lock even for a moment, or the rightful owner finishing at
        # that moment would find it taken (and give up its result).
        if not await self._still_mine(claim):
            return None
        owner = f"{self._worker_id}#{claim.attempt}"
        guard = {"status": Status.PROCESSING.value, "worker_id": self._worker_id, "attempts": claim.attempt}
        written = await finish(self._tasks, self._locks, task_id, status.value, owner=owner, fields=fields, guard=guard)
        if written is None:
            await self._settle_if_final(task_id)
        return written
