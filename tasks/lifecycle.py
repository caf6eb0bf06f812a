"""The task lifecycle: every transition of a task after it is created, in the order a task
lives them, and the only code that writes a task's status, lease, attempts or outcome. It runs
in api_svc only, the tasks' owner; workers ask for their transitions through its
TaskLifecycleService (api_svc.lifecycle_servicer, worker_svc.lifecycle_client).

1. The locks (`task_locks`) that make each transition happen once.
2. What workers ask for (`TaskClaims`): claim with a lease, renew, retry, complete or fail,
   hand back on shutdown.
3. What the API does itself: cancel, settle an outcome its writer left unwritten (the relay,
   readers), reopen a FAILED task for an operator's replay, forget a deleted task.

Why locks: exactly-once task transitions on a store whose updates are not atomic.

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
- the final lock of a task with a callback URL also names the webhook event its end owes
  (`webhook_id`, and `webhook_due` until api_svc's dispatcher has turned it into a delivery,
  api_svc.webhooks): committed with the outcome, so no crash between the two can lose or
  double it;
- `<task>:replay:<n>` — the one reopening of a FAILED task by an operator (AdminService), which
  gives the final lock back; the attempt cap then counts from the task's `attempt_base`;
- `<owner>:active:<n>` — one of the owner's active-task slots (n < their `active_tasks` quota,
  api_svc.quotas), taken by CreateTask before the task is stored and given back here when the
  task ends (`finish`, `settle_if_final`) or is deleted (`forget`: the slot names its task).
  A slot whose task is terminal or gone is reclaimable, so a crash between steps leaks none.

The task document is written by the lock's holder only (or settled from the final lock); a
lost document update can delay a task, but never yields a second owner or outcome.
"""

from __future__ import annotations

import enum
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

from common.failpoints import failpoint
from tasks.model import TERMINAL, Status, as_utc, utcnow

# -- 1. the locks ------------------------------------------------------------------------------
TASK_LOCKS = "task_locks"

Document = dict[str, Any]
Locks = AsyncCollection[Document]


async def ensure_lock_indexes(locks: Locks) -> None:
    await locks.create_index([("task_id", ASCENDING)])
    await locks.create_index([("webhook_due", ASCENDING)])


async def take_attempt(locks: Locks, task_id: str, attempt: int, owner: str, lease_until: datetime) -> bool:
    """Owns attempt `attempt` of the task, or False if someone else does."""
    return await _insert(
        locks, {"_id": f"{task_id}:attempt:{attempt}", "task_id": task_id, "owner": owner, "lease_until": lease_until}
    )


async def attempt_lock(locks: Locks, task_id: str, attempt: int) -> dict[str, Any] | None:
    """Who holds attempt `attempt` and until when (`owner`, `lease_until`); None: nobody."""
    return await locks.find_one({"_id": f"{task_id}:attempt:{attempt}"})


async def take_final(
    locks: Locks, task_id: str, owner: str, terminal: dict[str, Any], *, webhook: bool = False
) -> bool:
    """Commits `terminal` (the fields of the task's terminal write, status included) as the
    task's outcome; False if it already has one. `webhook`: the task has a callback URL, and
    the outcome is committed with the id of the one event that announces it."""
    document = {
        "_id": final_lock_id(task_id),
        "task_id": task_id,
        "outcome": terminal["status"],
        "owner": owner,
        "at": utcnow(),
        "terminal": terminal,
    }
    if webhook:
        document |= {"webhook_id": new_webhook_id(), "webhook_due": True}
    return await _insert(locks, document)


def new_webhook_id() -> str:
    """A Standard Webhooks message id (`msg_…`): the event's `webhook-id`, on every retry."""
    return f"msg_{secrets.token_urlsafe(18)}"


async def webhooks_due(locks: Locks, limit: int) -> list[Document]:
    """Final locks whose webhook event has no delivery yet (api_svc.webhooks makes them)."""
    return await locks.find({"webhook_due": True}).limit(limit).to_list()


async def webhook_handed_over(locks: Locks, lock_id: str) -> None:
    """The event of this final lock now has its delivery: the lock stops naming it as due."""
    await locks.update_one({"_id": lock_id}, {"$unset": {"webhook_due": ""}})


def final_lock_id(task_id: str) -> str:
    return f"{task_id}:final"


ACTIVE_SLOT = "active"


def active_slot_id(owner_id: str, index: int) -> str:
    return f"{owner_id}:active:{index}"


def active_slot_index(slot_id: str) -> int:
    return int(slot_id.rsplit(":", 1)[1])


async def take_active_slot(locks: Locks, owner_id: str, index: int, task_id: str) -> bool:
    """Owns active slot `index` of the owner for `task_id`, or False if another task holds it."""
    return await _insert(
        locks,
        {
            "_id": active_slot_id(owner_id, index),
            "task_id": task_id,
            "owner_id": owner_id,
            "kind": ACTIVE_SLOT,
            "at": utcnow(),
        },
    )


async def release_active_slot(locks: Locks, task_id: str) -> None:
    """Gives back the active slot `task_id` holds (none: nothing happens). Filtered on the task,
    so a slot already reclaimed and taken by another task is left alone."""
    await locks.delete_many({"task_id": task_id, "kind": ACTIVE_SLOT})


def terminal_fields(lock: dict[str, Any]) -> dict[str, Any]:
    """What the final lock says the task document must hold."""
    return dict(lock.get("terminal") or {"status": lock["outcome"], "lease_until": None})


async def settle_if_final(tasks: AsyncCollection[dict[str, Any]], locks: Locks, task_id: str) -> dict[str, Any] | None:
    """If the task has a committed outcome, writes it onto the task document where the document
    does not show it yet (its writer died after the lock, or a claim's write overwrote it) and
    returns the terminal fields; None if the task has no outcome."""
    lock = await locks.find_one({"_id": final_lock_id(task_id)})
    if lock is None:
        return None
    terminal = terminal_fields(lock)
    settled = await tasks.update_one({"_id": task_id, "status": {"$ne": terminal["status"]}}, {"$set": terminal})
    if settled.modified_count:  # its writer died before giving the slot back
        await release_active_slot(locks, task_id)
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
    webhook: bool = False,
) -> dict[str, Any] | None:
    """Commits the task's terminal state if `owner` wins its final lock, then writes it onto the
    task; returns the fields written (None: the task already has an outcome, or is gone).
    `webhook`: the task has a callback URL (its event is committed with the outcome).

    The lock is never given back once taken: a reader may already have settled the task from
    it. If the write fails, the outcome stands and is settled by the relay or the next claimer.
    A task deleted meanwhile matches nothing: its lock goes too."""
    final = terminal_write(outcome, fields)
    if not await take_final(locks, task_id, owner, final, webhook=webhook):
        # Ours already (a finish asked again after its answer was lost, or after its deadline
        # while the insert was still on its way): the same outcome, recorded once. Anyone else's:
        # the task has its outcome.
        lock = await locks.find_one({"_id": final_lock_id(task_id)})
        if lock is None or lock.get("owner") != owner:
            return None
        committed = terminal_fields(lock)
        await tasks.update_one({"_id": task_id, "status": {"$ne": committed["status"]}}, {"$set": committed})
        await release_active_slot(locks, task_id)
        return committed
    failpoint("task.final_locked")
    written = await tasks.update_one({"_id": task_id}, {"$set": final})
    if written.matched_count == 0:
        await forget(locks, task_id)
        return None
    # Ended: the owner's active slot is free for their next task. A crash before this line
    # leaves a slot whose task is terminal, which the next create over the limit reclaims.
    await release_active_slot(locks, task_id)
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
    await locks.delete_one({"_id": final_lock_id(task_id)})


async def forget(locks: Locks, task_id: str) -> None:
    await locks.delete_many({"task_id": task_id})


async def _insert(locks: Locks, document: dict[str, Any]) -> bool:
    try:
        await locks.insert_one(document)
    except DuplicateKeyError:
        return False
    return True


# -- 2. what workers ask for (through TaskLifecycleService) ------------------------------------


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
    # FINISHED by this worker's own earlier finish, whose answer it never got (`task` is then
    # the task as committed): the worker still owes its announcement and any dead letter.
    own_outcome: bool = False

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
        # Never onto a finished task (a settle may have landed since our read); the final lock,
        # checked next, still decides where this filter races inside the store.
        unfinished = {"_id": task_id, "status": {"$nin": [status.value for status in TERMINAL]}}
        await self._tasks.update_one(unfinished, {"$set": fields})
        # Checked after our write: a Cancel that took its lock before it is seen here; one that
        # takes it later writes CANCELLED after our write (and we notice before finishing).
        if await self._settle_if_final(task_id):
            return Claim(ClaimOutcome.FINISHED, current)
        return Claim(ClaimOutcome.CLAIMED, {**current, **fields})

    async def _resume(self, task_id: str, current: Document | None) -> Claim:
        """A retry after an outage resumes the attempt this worker holds (the processor lets
        only the coroutine holding the task get here), unless the outage cut short a finish
        whose outcome is already committed."""
        terminal = await settle_if_final(self._tasks, self._locks, task_id)
        assert current is not None
        if terminal is not None:
            own = terminal.get("worker_id") == self._worker_id
            return Claim(ClaimOutcome.FINISHED, {**current, **terminal}, own_outcome=own)
        # The document may lag behind our locks: a retry that took attempt n + 1 was cut short
        # before it wrote it. Resuming attempt n would be fenced by our own lock, forever.
        attempt = int(current.get("attempts", 0))
        while (lock := await attempt_lock(self._locks, task_id, attempt + 1)) is not None:
            if lock["owner"] != self._worker_id:
                break  # taken over: the finish's fence stops this attempt
            attempt += 1
        if attempt != int(current.get("attempts", 0)):
            fields = {"attempts": attempt, "updated_at": utcnow()}
            unfinished = {"_id": task_id, "status": {"$nin": [status.value for status in TERMINAL]}}
            await self._tasks.update_one(unfinished, {"$set": fields})
            current = {**current, **fields}
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
        mine = {"_id": claim.task["_id"], "status": Status.PROCESSING.value, "worker_id": self._worker_id}
        await self._tasks.update_one({**mine, "attempts": claim.attempt}, {"$set": fields})
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
        webhook = bool(claim.task.get("callback_url"))
        written = await finish(
            self._tasks, self._locks, task_id, status.value, owner=owner, fields=fields, webhook=webhook
        )
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


# -- 3. the API's side -------------------------------------------------------------------------
async def cancel(
    tasks: AsyncCollection[Document], locks: Locks, owner_id: str, task_id: str
) -> tuple[Document, Document] | None:
    """PENDING/PROCESSING → CANCELLED: (the task before, the fields written); None if the task
    is not the owner's, or not (or no longer) cancellable. The final lock decides a race with a
    worker finishing the task."""
    current = await tasks.find_one({"_id": task_id, "owner_id": owner_id})
    if current is None or Status(current["status"]) in TERMINAL:
        return None
    webhook = bool(current.get("callback_url"))
    written = await finish(tasks, locks, task_id, Status.CANCELLED.value, owner="api", fields={}, webhook=webhook)
    return None if written is None else (current, written)


async def reopen_failed(
    tasks: AsyncCollection[Document], locks: Locks, task_id: str, stale_after: float
) -> tuple[str, Document] | None:
    """FAILED → PENDING for a replay: ("replayed" | "finished" | "running", the task); None if
    there is no such task. The attempt count goes on from where it was (`attempt_base` records
    it: the worker's attempt cap counts from there)."""
    current = await tasks.find_one({"_id": task_id})
    if current is None:
        return None
    status = Status(current["status"])
    if status in (Status.COMPLETED, Status.CANCELLED):
        return "finished", current
    if status is not Status.FAILED:
        return "running", current
    replay = int(current.get("replays", 0)) + 1
    if not await take_replay(locks, task_id, replay, stale_after):
        return "running", current
    await reopen(locks, task_id)
    now = utcnow()
    fields = {
        "status": Status.PENDING.value,
        "replays": replay,
        "attempt_base": int(current.get("attempts", 0)),
        "updated_at": now,
    }
    cleared = {name: "" for name in ("error", "result", "worker_id", "lease_until", "started_at", "completed_at")}
    await tasks.update_one({"_id": task_id}, {"$set": fields, "$unset": cleared})
    reopened = {key: value for key, value in current.items() if key not in cleared}
    return "replayed", {**reopened, **fields}
