"""Exactly-once task transitions on a store whose updates are not atomic.

FerretDB v1 runs `find_one_and_update` and conditional updates as read-modify-write: measured
here, 8 workers racing to claim one PENDING task produced several "winners" in 43 of 50 rounds.
What every backend (FerretDB on SQLite or PostgreSQL, MongoDB) does enforce is the uniqueness of
`_id` on insert. So every transition that must happen once is an insert into `task_locks`:

- `<task>:attempt:<n>` — the one worker that owns attempt n (with its lease). The locks also
  count attempts: whoever ends an attempt (an outcome, a crash, a lost lease), the next claim
  takes n + 1, so a task that kills its workers cannot be claimed forever;
- `<task>:final` — the one terminal outcome (COMPLETED, FAILED or CANCELLED), recorded whole:
  the lock holds every field the terminal write sets. Inserting it is the commit; writing the
  task document after it only makes the outcome visible, and whoever finds a task that is not
  terminal although its final lock exists (the relay, the next claimer) writes that outcome
  onto it (`settle_if_final`). A writer that dies between the two, or a claim whose write lands on top of
  a finished task, therefore never leaves a task PROCESSING for good;
- `<task>:replay:<n>` — the one reopening of a FAILED task by an operator (AdminService), which
  gives the final lock back; the attempt cap then counts from the task's `attempt_base`.

The task document is written by the lock's holder only (or settled from the final lock); a
lost document update can delay a task, but never yields a second owner or outcome.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from common.failpoints import failpoint
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


async def attempt_lock(locks: Locks, task_id: str, attempt: int) -> dict[str, Any] | None:
    """Who holds attempt `attempt` and until when (`owner`, `lease_until`); None: nobody."""
    return await locks.find_one({"_id": f"{task_id}:attempt:{attempt}"})


async def take_final(locks: Locks, task_id: str, owner: str, terminal: dict[str, Any]) -> bool:
    """Commits `terminal` (the fields of the task's terminal write, status included) as the
    task's outcome; False if it already has one."""
    document = {
        "_id": f"{task_id}:final",
        "task_id": task_id,
        "outcome": terminal["status"],
        "owner": owner,
        "at": utcnow(),
        "terminal": terminal,
    }
    return await _insert(locks, document)


def terminal_fields(lock: dict[str, Any]) -> dict[str, Any]:
    """What the final lock says the task document must hold."""
    return dict(lock.get("terminal") or {"status": lock["outcome"], "lease_until": None})


async def settle_if_final(tasks: AsyncCollection[dict[str, Any]], locks: Locks, task_id: str) -> dict[str, Any] | None:
    """If the task has a committed outcome, writes it onto the task document where the document
    does not show it yet (its writer died after the lock, or a claim's write overwrote it) and
    returns the terminal fields; None if the task has no outcome."""
    lock = await locks.find_one({"_id": f"{task_id}:final"})
    if lock is None:
        return None
    terminal = terminal_fields(lock)
    await tasks.update_one({"_id": task_id, "status": {"$ne": terminal["status"]}}, {"$set": terminal})
    return terminal


def terminal_write(outcome: str, fields: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    return {"status": outcome, "completed_at": now, "updated_at": now, "lease_until": None, **fields}


async def finish(
    tasks: AsyncCollection[dict[str, Any]],
    locks: Locks,
    task_id: str,
    outcome: str,
    *,
    owner: str,
    fields: dict[str, Any],
) -> dict[str, Any] | None:
    """Commits the task's terminal state if `owner` wins its final lock, then writes it onto the
    task; returns the fields written (None: the task already has an outcome, or is gone).

    The lock is never given back once taken: a reader may already have settled the task from
    it. If the write fails, the outcome stands and is settled by the relay or the next claimer.
    A task deleted meanwhile matches nothing: its lock goes too."""
    final = terminal_write(outcome, fields)
    if not await take_final(locks, task_id, owner, final):
        return None
    failpoint("task.final_locked")
    written = await tasks.update_one({"_id": task_id}, {"$set": final})
    if written.matched_count == 0:
        await forget(locks, task_id)
        return None
    return final


async def take_replay(locks: Locks, task_id: str, replay: int, stale_after: float) -> bool:
    """Owns replay number `replay` of a FAILED task (an operator ran its dead letter again):
    `<task>:replay:<n>`, so of two replays of one failure one reopens the task. A lock older than
    `stale_after` seconds whose task is still FAILED belongs to a replay that died half-way: it is
    taken over (the steps after it are idempotent)."""
    document = {"_id": f"{task_id}:replay:{replay}", "task_id": task_id, "at": utcnow()}
    if await _insert(locks, document):
        return True
    found = await locks.find_one({"_id": document["_id"]})
    return found is not None and (utcnow() - as_utc(found["at"])).total_seconds() > stale_after


async def reopen(locks: Locks, task_id: str) -> None:
    """Gives the task's final lock back, under a replay lock only: the outcome it held is
    history and the next attempt may commit a new one. Attempt locks stay, so attempt numbers
    keep growing and a worker resumed from an attempt before the replay is still fenced."""
    await locks.delete_one({"_id": f"{task_id}:final"})


async def forget(locks: Locks, task_id: str) -> None:
    await locks.delete_many({"task_id": task_id})


async def _insert(locks: Locks, document: dict[str, Any]) -> bool:
    try:
        await locks.insert_one(document)
    except DuplicateKeyError:
        return False
    return True
