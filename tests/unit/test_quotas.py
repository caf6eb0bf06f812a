"""The quota rules without a store: limits over overrides, the day's end, stale slots, the
refusal's details, and admissions racing on an insert-once store (the slots' margin is 0)."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import grpc
import pytest
from google.rpc import error_details_pb2

from api_svc.quota_repository import QuotaRepository
from api_svc.quotas import DEFAULT_QUOTAS, QuotaLimits, Quotas, next_midnight, seconds_until, stale_slots
from common.errors import ResourceExhausted
from tasks.lifecycle import active_slot_id, active_slot_index

pytestmark = pytest.mark.unit
NOW = datetime(2026, 3, 1, 22, 30, tzinfo=UTC)


def test_overrides_replace_only_the_limits_they_name() -> None:
    limits = DEFAULT_QUOTAS.with_overrides({"active_tasks": 5, "unknown": 1})
    assert (limits.active_tasks, limits.tasks_per_day) == (5, DEFAULT_QUOTAS.tasks_per_day)
    assert limits.overridden == {"active_tasks"}
    assert DEFAULT_QUOTAS.with_overrides({}).overridden == frozenset()


def test_the_day_ends_at_midnight_utc_whatever_the_zone() -> None:
    assert next_midnight(NOW) == datetime(2026, 3, 2, tzinfo=UTC)
    east = NOW.astimezone(__import__("zoneinfo").ZoneInfo("Asia/Tokyo"))  # already 2 March there
    assert next_midnight(east) == datetime(2026, 3, 2, tzinfo=UTC)
    assert seconds_until(next_midnight(NOW), NOW) == 5400
    assert seconds_until(NOW, NOW) == 1  # never "retry in 0 s"


def test_a_slot_is_stale_when_its_task_ended_or_was_never_stored() -> None:
    young, old = NOW - timedelta(seconds=5), NOW - timedelta(minutes=5)
    slots: list[dict[str, object]] = [
        {"_id": "s0", "task_id": "done", "at": young},
        {"_id": "s1", "task_id": "running", "at": old},
        {"_id": "s2", "task_id": "in-flight", "at": young},  # a create still on its way
        {"_id": "s3", "task_id": "crashed", "at": old},
    ]
    statuses = {"done": "CANCELLED", "running": "PROCESSING"}
    assert [slot["_id"] for slot in stale_slots(slots, statuses, NOW)] == ["s0", "s3"]
    assert active_slot_index(active_slot_id("u:1", 12)) == 12


class _Store:
    """Insert-once documents, as every backend enforces a unique _id. The racers all make the
    read named `racing_at` before any of them writes (each waits there for the others, with a
    timeout): the stale read a real race gives, so every insert after it can collide."""

    def __init__(self, racing_at: str, racers: int) -> None:
        self.slots: dict[str, dict[str, Any]] = {}
        self.marks: dict[str, str] = {}
        self.limits: dict[str, int] = {}
        self._racing_at, self._together = racing_at, asyncio.Barrier(racers)

    async def _read(self, name: str) -> None:
        """After the read's snapshot: the racers answer from what they saw before any wrote."""
        if name == self._racing_at:
            async with asyncio.timeout(5):
                await self._together.wait()

    async def overrides(self, owner_id: str) -> dict[str, int]:
        return self.limits

    async def stored_bytes(self, owner_id: str) -> int:
        return 0

    async def active_slots(self, owner_id: str) -> list[dict[str, Any]]:
        held = [{"_id": key, **value} for key, value in self.slots.items()]
        await self._read("active_slots")
        return held

    async def take_active_slot(self, owner_id: str, index: int, task_id: str) -> bool:
        key = active_slot_id(owner_id, index)
        if key in self.slots:
            return False
        self.slots[key] = {"task_id": task_id, "at": datetime.now(UTC)}
        return True

    async def release_active_slot(self, task_id: str) -> None:
        self.slots = {k: v for k, v in self.slots.items() if v["task_id"] != task_id}

    async def task_statuses(self, task_ids: list[str]) -> dict[str, str]:
        return dict.fromkeys(task_ids, "PENDING")

    async def day_marks(self, owner_id: str, day: date) -> int:
        counted = len(self.marks)
        await self._read("day_marks")
        return counted

    async def day_mark_indices(self, owner_id: str, day: date) -> set[int]:
        return {int(key) for key in self.marks}

    async def take_day_mark(self, owner_id: str, day: date, index: int, task_id: str) -> bool:
        if str(index) in self.marks:
            return False
        self.marks[str(index)] = task_id
        return True

    async def release_day_mark(self, owner_id: str, day: date, index: int) -> None:
        self.marks.pop(str(index), None)


async def _race(limits: QuotaLimits, count: int, racing_at: str) -> tuple[_Store, list[object]]:
    store = _Store(racing_at, count)
    quotas = Quotas(cast(QuotaRepository, store), limits, rng=random.Random(7))  # noqa: S311
    outcomes = await asyncio.gather(
        *(quotas.admit_task("u1", f"task-{n}") for n in range(count)), return_exceptions=True
    )
    return store, list(outcomes)


async def test_racing_admissions_take_exactly_the_active_limit() -> None:
    store, outcomes = await _race(DEFAULT_QUOTAS.with_overrides({"active_tasks": 5}), 50, "active_slots")
    refused = [o for o in outcomes if isinstance(o, ResourceExhausted)]
    assert len(refused) == 45 and len(store.slots) == 5
    # A refused admission gave its day mark back: only the admitted ones count today.
    assert len(store.marks) == 5


async def test_racing_admissions_take_exactly_the_daily_limit() -> None:
    store, outcomes = await _race(DEFAULT_QUOTAS.with_overrides({"tasks_per_day": 40}), 50, "day_marks")
    assert sum(isinstance(o, ResourceExhausted) for o in outcomes) == 10
    assert len(store.marks) == 40 and len(store.slots) == 40  # refused ones gave their slot back


def test_a_refusal_carries_a_quota_failure_and_retry_info() -> None:
    async def refuse() -> ResourceExhausted:
        _, outcomes = await _race(DEFAULT_QUOTAS.with_overrides({"active_tasks": 0}), 1, "active_slots")
        assert isinstance(outcomes[0], ResourceExhausted)
        return outcomes[0]

    error = asyncio.run(refuse())
    status = error.to_status()
    assert status.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0]
    failure, retry = error_details_pb2.QuotaFailure(), error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(failure) and status.details[1].Unpack(retry)
    [violation] = failure.violations
    assert (violation.subject, violation.quota_id, violation.quota_value) == ("user:u1", "active_tasks", 0)
    assert error.message == f"quota exceeded: {violation.description}"
    assert violation.description.startswith("active_tasks: 0 of 0")
    assert retry.retry_delay.seconds == 5
