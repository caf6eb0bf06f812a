"""Per-user quotas in domain terms: the limits in force (the PIXELFLOW_QUOTA_* defaults, or an
administrator's overrides), what a user uses of each, and the admission of a new task or upload.
No gRPC here.

Over a limit is ResourceExhausted with a QuotaFailure naming it (subject `user:<id>`, a
description starting with the limit's name) and a RetryInfo where waiting helps. How each limit
is counted, and why so (FerretDB v1 has no atomic counter): docs/decisions/0020-quotas.md.
- active_tasks: insert-once slots `<owner>:active:<n>` for n < limit (tasks.lifecycle), taken
  before the task is stored and given back when it ends or is deleted: exact under any
  concurrency, because the store enforces a unique `_id`.
- tasks_per_day: insert-once marks `<owner>:day:<YYYY-MM-DD>:<n>` per calendar day in UTC, never
  given back for a task that was created (a deleted task still counted that day).
- stored_bytes: sums of what the user keeps; checked before each upload and task, so calls
  racing each other can pass it by what they add together (a soft limit).
- max_upload_bytes: the bound of each upload, CreateUpload and inline alike.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from api_svc.quota_repository import QuotaRepository
from common.errors import QuotaViolation, ResourceExhausted
from tasks.lifecycle import active_slot_index
from tasks.model import TERMINAL, Status, as_utc, utcnow

log = logging.getLogger(__name__)

ACTIVE_TASKS = "active_tasks"
TASKS_PER_DAY = "tasks_per_day"
STORED_BYTES = "stored_bytes"
MAX_UPLOAD_BYTES = "max_upload_bytes"
NAMES = (ACTIVE_TASKS, TASKS_PER_DAY, STORED_BYTES, MAX_UPLOAD_BYTES)
# Waiting helps an active-task refusal once one of the user's tasks ends: a short suggestion.
ACTIVE_RETRY_SECONDS = 5
# A slot whose task does not exist yet may belong to a create still on its way (the slot is
# taken before the task is stored); only older ones are a crashed create's, and reclaimable.
STALE_SLOT_SECONDS = 30.0
# Day marks tried at once from the day's count on; several creates racing spread over them.
DAY_MARK_WINDOW = 32


@dataclass(frozen=True)
class QuotaLimits:
    active_tasks: int
    tasks_per_day: int
    stored_bytes: int
    max_upload_bytes: int
    # The names an administrator set for this user (the rest are the defaults).
    overridden: frozenset[str] = field(default_factory=frozenset)

    def value(self, name: str) -> int:
        return int(getattr(self, name))

    def with_overrides(self, overrides: dict[str, int]) -> QuotaLimits:
        known = {name: int(value) for name, value in overrides.items() if name in NAMES}
        values = {name: known.get(name, self.value(name)) for name in NAMES}
        return QuotaLimits(**values, overridden=frozenset(known))


# ApiSettings' defaults (PIXELFLOW_QUOTA_*), for code that builds a TaskService without settings.
DEFAULT_QUOTAS = QuotaLimits(
    active_tasks=100, tasks_per_day=10_000, stored_bytes=10 * 1024**3, max_upload_bytes=128 * 1024**2
)


@dataclass(frozen=True)
class Usage:
    limits: QuotaLimits
    used: dict[str, int]
    # When tasks_per_day starts again from 0.
    day_resets_at: datetime


@dataclass
class Admission:
    """What a new task holds until it is stored; given back if it is not (`Quotas.give_back`)."""

    owner_id: str
    task_id: str
    day: date | None = None
    day_index: int | None = None
    slot: bool = False


def next_midnight(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time(0), tzinfo=UTC)


def seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def exceeded(
    owner_id: str, name: str, limit: int, description: str, retry_after_seconds: int | None = None
) -> ResourceExhausted:
    """The refusal of a call over `name`: the message and the QuotaFailure say the same."""
    violation = QuotaViolation(f"user:{owner_id}", description, quota_id=name, quota_value=limit)
    return ResourceExhausted(
        f"quota exceeded: {description}", retry_after_seconds=retry_after_seconds, quota_violations=[violation]
    )


def stale_slots(slots: list[dict[str, object]], statuses: dict[str, str], now: datetime) -> list[dict[str, object]]:
    """Slots whose task ended (terminal) or is gone for longer than a create takes: a finish or
    a create that died before giving its slot back."""
    stale = []
    for slot in slots:
        status = statuses.get(str(slot["task_id"]))
        if status is not None and Status(status) in TERMINAL:
            stale.append(slot)
        elif status is None:
            taken_at = slot.get("at")
            if not isinstance(taken_at, datetime) or (now - as_utc(taken_at)).total_seconds() > STALE_SLOT_SECONDS:
                stale.append(slot)
    return stale


class Quotas:
    def __init__(self, repository: QuotaRepository, defaults: QuotaLimits, *, rng: random.Random | None = None) -> None:
        self._repository = repository
        self._defaults = defaults
        # Racing creates try free slots in different orders, so they rarely collide.
        self._rng = rng or random.Random()  # noqa: S311 - spreading, not secrecy

    async def limits(self, owner_id: str) -> QuotaLimits:
        return self._defaults.with_overrides(await self._repository.overrides(owner_id))

    async def overrides(self, owner_id: str) -> dict[str, int]:
        return {name: int(value) for name, value in (await self._repository.overrides(owner_id)).items()}

    async def set_overrides(self, owner_id: str, overrides: dict[str, int], by: str) -> None:
        await self._repository.set_overrides(owner_id, overrides, by)
        log.warning("quota overrides set", extra={"owner_id": owner_id, "by": by, "overrides": overrides})

    async def usage(self, owner_id: str) -> Usage:
        now = utcnow()
        used = {
            ACTIVE_TASKS: await self._repository.active_tasks(owner_id),
            TASKS_PER_DAY: await self._repository.day_marks(owner_id, now.date()),
            STORED_BYTES: await self._repository.stored_bytes(owner_id),
            MAX_UPLOAD_BYTES: 0,
        }
        return Usage(await self.limits(owner_id), used, next_midnight(now))

    # -- uploads -----------------------------------------------------------------------------
    async def upload_bound(self, owner_id: str) -> tuple[int, str]:
        """The most bytes this user's next upload may hold, and the limit that sets it."""
        limits, stored = await asyncio.gather(self.limits(owner_id), self._repository.stored_bytes(owner_id))
        room = max(0, limits.stored_bytes - stored)
        if room < limits.max_upload_bytes:
            return room, STORED_BYTES
        return limits.max_upload_bytes, MAX_UPLOAD_BYTES

    async def upload_refused(self, owner_id: str, name: str, bound: int) -> ResourceExhausted:
        """The refusal of an upload over `bound`, the bytes `name` left it."""
        limits = await self.limits(owner_id)
        if name == STORED_BYTES:
            return exceeded(
                owner_id,
                STORED_BYTES,
                limits.stored_bytes,
                f"{STORED_BYTES}: the upload does not fit in the {bound} bytes left of your "
                f"{limits.stored_bytes}; delete tasks you no longer need first",
            )
        return exceeded(
            owner_id, MAX_UPLOAD_BYTES, bound, f"{MAX_UPLOAD_BYTES}: uploads may hold at most {bound} bytes"
        )

    # -- tasks -------------------------------------------------------------------------------
    async def admit_task(self, owner_id: str, task_id: str, inline_bytes: int = 0) -> Admission:
        """Reserves what a new task counts against (an active slot, a mark of today) after
        checking the byte limits; raises the refusal of the first limit it would pass."""
        limits, stored = await asyncio.gather(self.limits(owner_id), self._repository.stored_bytes(owner_id))
        if inline_bytes > limits.max_upload_bytes:
            raise await self.upload_refused(owner_id, MAX_UPLOAD_BYTES, limits.max_upload_bytes)
        if stored >= limits.stored_bytes or stored + inline_bytes > limits.stored_bytes:
            raise exceeded(
                owner_id,
                STORED_BYTES,
                limits.stored_bytes,
                f"{STORED_BYTES}: {stored} of {limits.stored_bytes} bytes used"
                + (f", and this task's image adds {inline_bytes}" if inline_bytes else "")
                + "; delete tasks you no longer need first",
            )
        admission = Admission(owner_id, task_id)
        await self._take_active_slot(admission, limits.active_tasks)
        try:
            await self._take_day_mark(admission, limits.tasks_per_day)
        except BaseException:
            await self.give_back(admission)
            raise
        return admission

    async def give_back(self, admission: Admission) -> None:
        """A task that was not stored after all (a refusal, an error, a racing retry)."""
        if admission.slot:
            await self._repository.release_active_slot(admission.task_id)
            admission.slot = False
        if admission.day is not None and admission.day_index is not None:
            await self._repository.release_day_mark(admission.owner_id, admission.day, admission.day_index)
            admission.day = admission.day_index = None

    async def _take_active_slot(self, admission: Admission, limit: int) -> None:
        owner_id = admission.owner_id
        for round_ in range(2):
            held = await self._repository.active_slots(owner_id)
            taken = {active_slot_index(str(slot["_id"])) for slot in held}
            free = [index for index in range(limit) if index not in taken]
            self._rng.shuffle(free)
            for index in free:
                if await self._repository.take_active_slot(owner_id, index, admission.task_id):
                    admission.slot = True
                    return
            # Full: give back what crashed finishes or creates left behind, then look again.
            if round_ == 0 and not await self._reclaim(held):
                break
        raise exceeded(
            owner_id,
            ACTIVE_TASKS,
            limit,
            f"{ACTIVE_TASKS}: {limit} of {limit} tasks are PENDING or PROCESSING; wait for one to finish or cancel one",
            ACTIVE_RETRY_SECONDS,
        )

    async def _reclaim(self, held: list[dict[str, object]]) -> bool:
        if not held:
            return False
        statuses = await self._repository.task_statuses([str(slot["task_id"]) for slot in held])
        stale = stale_slots(held, statuses, utcnow())
        for slot in stale:
            log.warning("reclaimed an active slot", extra={"slot": slot["_id"], "task_id": slot["task_id"]})
            await self._repository.release_slot_of(str(slot["_id"]), str(slot["task_id"]))
        return bool(stale)

    async def _take_day_mark(self, admission: Admission, limit: int) -> None:
        owner_id = admission.owner_id
        now = utcnow()
        today = now.date()
        counted = await self._repository.day_marks(owner_id, today)
        # First the marks after the day's count; if those are taken (racing creates), every gap
        # below the limit (marks a refused create gave back).
        candidates = list(range(counted, min(limit, counted + DAY_MARK_WINDOW)))
        for round_ in range(2):
            self._rng.shuffle(candidates)
            for index in candidates:
                if await self._repository.take_day_mark(owner_id, today, index, admission.task_id):
                    admission.day, admission.day_index = today, index
                    return
            if round_ == 0:
                taken = await self._repository.day_mark_indices(owner_id, today)
                candidates = [index for index in range(limit) if index not in taken]
        resets = next_midnight(now)
        raise exceeded(
            owner_id,
            TASKS_PER_DAY,
            limit,
            f"{TASKS_PER_DAY}: {limit} of {limit} tasks created today (UTC); "
            f"the count starts again at {resets.isoformat().replace('+00:00', 'Z')}",
            seconds_until(resets, now),
        )


async def prune_day_marks_forever(repository: QuotaRepository, interval: float = 3600.0) -> None:
    """Runs for the service's life: removes the marks of days before yesterday (yesterday's are
    kept for clocks a little apart between replicas)."""
    while True:
        try:
            pruned = await repository.prune_day_marks(utcnow().date() - timedelta(days=1))
            if pruned:
                log.info("pruned day marks", extra={"count": pruned})
        except Exception:
            log.exception("pruning day marks failed")
        await asyncio.sleep(interval)
