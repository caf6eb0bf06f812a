"""The worker's side of a task: claims with leases and finishes, exactly once per attempt and
per task even though the store's conditional updates are not atomic (see common.task_locks)."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from common.task_locks import Locks, attempt_lock, finish, settle_if_final, take_attempt
from common.tasks import TERMINAL, Status, as_utc, utcnow

Document = dict[str, Any]


class ClaimOutcome(enum.Enum):
    CLAIMED = "claimed"
    FINISHED = "finished"  # already COMPLETED/FAILED/CANCELLED: acknowledge without work
    LEASED = "leased"  # another worker holds a live lease
    MISSING = "missing"  # no such task (deleted, or a poison message)
    EXHAUSTED = "exhausted"  # this would be attempt max + 1: the earlier ones all died unfinished


@dataclass(frozen=True)
class Claim:
    outcome: ClaimOutcome
    task: Document | None = None

    @property
    def attempt(self) -> int:
        assert self.task is not None
        return int(self.task["attempts"])

    @property
    def attempt_in_run(self) -> int:
        """The attempt counted from the task's last replay by an operator (attempt numbers go on
        growing across replays; the cap applies to each run)."""
        assert self.task is not None
        return self.attempt - int(self.task.get("attempt_base", 0))


class TaskClaims:
    def __init__(
        self, tasks: AsyncCollection[Document], locks: Locks, worker_id: str, lease: timedelta, max_attempts: int
    ) -> None:
        self._tasks = tasks
        self._locks = locks
        self._worker_id = worker_id
        self._lease = lease
        self._max_attempts = max_attempts

    async def claim(self, task_id: str) -> Claim:
        current = await self._tasks.find_one({"_id": task_id})
        now = utcnow()
        if current is not None and current["status"] == Status.PROCESSING.value and self._is_mine(current):
            return await self._resume(task_id, current)
        if (settled := _nothing_to_claim(current, now)) is not None:
            return settled
        assert current is not None
        attempt = await self._take_next_attempt(task_id, int(current.get("attempts", 0)) + 1, now)
        if attempt is None:
            return Claim(ClaimOutcome.LEASED, current)
        if attempt - int(current.get("attempt_base", 0)) > self._max_attempts:
            # Every earlier attempt ended without an outcome (its worker crashed or lost its
            # lease): this one only records that, it does not run the task again.
            return Claim(ClaimOutcome.EXHAUSTED, {**current, "attempts": attempt})
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

    async def _resume(self, task_id: str, current: Document | None) -> Claim:
        """A retry after an outage resumes the attempt this worker holds (the processor lets
        only the coroutine holding the task get here), unless the outage cut short a finish
        whose outcome is already committed."""
        if await self._settle_if_final(task_id):
            return Claim(ClaimOutcome.FINISHED, current)
        return Claim(ClaimOutcome.CLAIMED, current)

    def _is_mine(self, current: Document | None) -> bool:
        return current is not None and current.get("worker_id") == self._worker_id

    async def _take_next_attempt(self, task_id: str, attempt: int, now: datetime) -> int | None:
        """Takes the lowest free attempt from `attempt` on; None if one is held under a live
        lease. The document may lag behind the locks (a lost update): attempts whose owner's
        lease has run out are skipped, and counted."""
        while not await take_attempt(self._locks, task_id, attempt, self._worker_id, now + self._lease):
            lock = await attempt_lock(self._locks, task_id, attempt)
            if lock is not None and lock["owner"] == self._worker_id:
                return attempt  # ours: taken before an outage cut the claim short
            if lock is not None and as_utc(lock["lease_until"]) > now:
                return None
            attempt += 1
        return attempt

    async def _settle_if_final(self, task_id: str) -> bool:
        """True if the task already has its committed outcome, which is then written onto the
        task document if it does not show it (its writer died after the lock, or our own claim
        write overwrote it: FerretDB's updates are not atomic)."""
        return await settle_if_final(self._tasks, self._locks, task_id) is not None

    async def _superseded(self, claim: Claim) -> bool:
        """True if a later attempt exists: our lease ran out (a long pause, SIGSTOP) and another
        worker took the task over, so nothing of ours may be written."""
        assert claim.task is not None
        return await attempt_lock(self._locks, claim.task["_id"], claim.attempt + 1) is not None

    async def retrying(self, claim: Claim) -> Claim:
        """Starts the next attempt of a task this worker holds (a transient failure, after the
        backoff); a non-CLAIMED outcome if the task was finished or taken meanwhile."""
        assert claim.task is not None
        task_id = claim.task["_id"]
        if await self._settle_if_final(task_id):
            return Claim(ClaimOutcome.FINISHED)
        now = utcnow()
        if not await take_attempt(self._locks, task_id, claim.attempt + 1, self._worker_id, now + self._lease):
            return Claim(ClaimOutcome.LEASED)  # taken over meanwhile
        fields = {"attempts": claim.attempt + 1, "lease_until": now + self._lease, "updated_at": now}
        await self._tasks.update_one({"_id": task_id}, {"$set": fields})
        return Claim(ClaimOutcome.CLAIMED, {**claim.task, **fields})

    async def complete(self, claim: Claim, result: Document) -> Document | None:
        """Records the result unless the task was cancelled, deleted, finished or taken over;
        returns the fields written."""
        return await self._finish(claim, Status.COMPLETED, {"result": result})

    async def fail(
        self, claim: Claim, code: str, message: str, *, retryable: bool, attempts: int | None = None
    ) -> Document | None:
        """Records the failure; `attempts` overrides the count shown (an EXHAUSTED claim holds
        the attempt after the last one that ran)."""
        error = {"code": code, "message": message, "retryable": retryable}
        fields: Document = {"error": error}
        if attempts is not None:
            fields["attempts"] = attempts
        return await self._finish(claim, Status.FAILED, fields)

    async def renew(self, claim: Claim) -> bool:
        """Extends the lease of an attempt this worker still holds (a long fetch or image, a
        queue in front of the pool); False if the task has its outcome or the attempt is gone.
        The attempt lock's lease is what keeps other claimers out; the task's copy is what the
        relay and readers see."""
        assert claim.task is not None
        task_id = claim.task["_id"]
        if await self._settle_if_final(task_id):
            return False
        until = utcnow() + self._lease
        lock = {"_id": f"{task_id}:attempt:{claim.attempt}", "owner": self._worker_id}
        if (await self._locks.update_one(lock, {"$set": {"lease_until": until}})).matched_count == 0:
            return False
        mine = {"_id": task_id, "status": Status.PROCESSING.value, "worker_id": self._worker_id}
        await self._tasks.update_one({**mine, "attempts": claim.attempt}, {"$set": {"lease_until": until}})
        return True

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
        # The fence: one read of the next attempt's lock (the locks are the truth; the task
        # document may lag). A worker resumed after losing its lease stops here.
        if await self._superseded(claim):
            return None
        owner = f"{self._worker_id}#{claim.attempt}"
        # The attempt and the worker go into the outcome, so settling it restores them too.
        fields = {"attempts": claim.attempt, "worker_id": self._worker_id, **fields}
        written = await finish(self._tasks, self._locks, task_id, status.value, owner=owner, fields=fields)
        if written is None:
            await self._settle_if_final(task_id)
        return written


def _nothing_to_claim(current: Document | None, now: datetime) -> Claim | None:
    """What the task document alone says: gone, finished, or leased by a live worker."""
    if current is None:
        return Claim(ClaimOutcome.MISSING)
    if Status(current["status"]) in TERMINAL:
        return Claim(ClaimOutcome.FINISHED, current)
    lease_until = current.get("lease_until")
    if current["status"] == Status.PROCESSING.value and lease_until is not None and as_utc(lease_until) > now:
        return Claim(ClaimOutcome.LEASED, current)
    return None
