"""Status events carry what changed; watchers merge them in order or read the task again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from api_svc.watch import MAX_PENDING_EVENTS, Subscription, WatchHub
from tasks.events import StatusEvent, Verdict
from tasks.model import Status

NOW = datetime(2026, 12, 1, 12, 0, 0, 123000, tzinfo=UTC)
TASK = "a" * 32

pytestmark = pytest.mark.unit


def _task(status: Status, attempts: int = 0) -> dict[str, Any]:
    return {"_id": TASK, "owner_id": "u", "status": status.value, "attempts": attempts, "updated_at": NOW}


def _processing(attempts: int) -> StatusEvent:
    document = {**_task(Status.PROCESSING, attempts), "worker_id": "w", "lease_until": NOW}
    return StatusEvent(TASK, Status.PROCESSING, document)


def test_an_event_round_trips_with_its_datetimes_and_nested_fields() -> None:
    result = {"blob_key": "tasks/aa/x/result-1", "width": 800, "timings": {"total_ms": 12.5}}
    event = StatusEvent(TASK, Status.COMPLETED, {"completed_at": NOW, "lease_until": None, "result": result})
    decoded = StatusEvent.decode(event.encode())
    assert decoded == event
    assert decoded is not None and decoded.document["completed_at"].tzinfo is not None


@pytest.mark.parametrize("value", [None, b"", b"not bson", b'{"task_id": "x", "status": "PENDING"}'])
def test_anything_else_on_the_topic_decodes_to_none(value: bytes | None) -> None:
    assert StatusEvent.decode(value) is None


def test_an_unknown_status_decodes_to_none() -> None:
    assert StatusEvent.decode(StatusEvent(TASK, Status.PENDING, {}).encode().replace(b"PENDING", b"PAUSING")) is None


@pytest.mark.parametrize(
    ("document", "event", "verdict"),
    [
        (_task(Status.PENDING), _processing(1), Verdict.APPLY),
        (_task(Status.PROCESSING, 1), _processing(1), Verdict.STALE),  # a duplicate
        (_task(Status.PROCESSING, 2), _processing(1), Verdict.STALE),  # overtaken
        (_task(Status.PROCESSING, 1), _processing(2), Verdict.APPLY),  # taken over after a lease
        (_task(Status.PROCESSING, 1), StatusEvent(TASK, Status.COMPLETED, {}), Verdict.APPLY),
        (_task(Status.PENDING), StatusEvent(TASK, Status.CANCELLED, {}), Verdict.APPLY),
        (_task(Status.COMPLETED, 1), _processing(2), Verdict.STALE),  # terminal is final
        (_task(Status.CANCELLED), StatusEvent(TASK, Status.COMPLETED, {}), Verdict.STALE),
        (_task(Status.PROCESSING, 1), StatusEvent(TASK, Status.PENDING, {}), Verdict.REREAD),  # handed back
    ],
)
def test_events_apply_only_forward(document: dict[str, Any], event: StatusEvent, verdict: Verdict) -> None:
    assert event.verdict(document) is verdict


def test_applying_takes_the_writers_document() -> None:
    later = NOW + timedelta(seconds=1)
    merged = StatusEvent(TASK, Status.FAILED, {"error": {"code": "X"}, "updated_at": later}).apply(
        _task(Status.PROCESSING, 1)
    )
    assert merged["status"] == "FAILED" and merged["error"] == {"code": "X"} and merged["updated_at"] == later
    assert merged["owner_id"] == "u" and merged["attempts"] == 1


async def test_a_subscription_hands_over_events_in_order() -> None:
    subscription = Subscription()
    first, second = _processing(1), StatusEvent(TASK, Status.COMPLETED, {})
    subscription.push(first)
    subscription.push(second)
    assert await subscription.next(1.0) == [first, second]


async def test_a_subscription_wakes_on_a_push_while_waiting() -> None:
    subscription = Subscription()

    async def push() -> None:
        subscription.push(_processing(1))

    # Tasks take their first step in the order they were created: the watcher is blocked in
    # next() (no event yet) by the time the pusher runs.
    waiting = asyncio.create_task(subscription.next(30.0))
    pusher = asyncio.create_task(push())
    assert await asyncio.wait_for(waiting, 5.0) == [_processing(1)]
    await pusher


async def test_a_subscription_asks_for_a_read_on_silence_an_unknown_change_or_overflow() -> None:
    subscription = Subscription()
    assert await subscription.next(0.01) is None  # the safety interval passed without events
    subscription.push(_processing(1))
    subscription.push(None)
    assert await subscription.next(1.0) is None
    for attempt in range(MAX_PENDING_EVENTS + 1):
        subscription.push(_processing(attempt))
    assert await subscription.next(1.0) is None  # some were dropped: the store knows


class _Record:
    def __init__(self, key: bytes | None, value: bytes | None) -> None:
        self._key, self._value = key, value

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return None  # outside a trace (common.tracing)

    def topic(self) -> str:
        return "task-status"


async def test_the_hub_routes_records_by_key_and_distrusts_a_mismatched_event() -> None:
    hub = WatchHub()
    other = "b" * 32
    with hub.subscribe(TASK) as mine, hub.subscribe(other) as theirs:
        hub.on_status_record(_Record(TASK.encode(), _processing(1).encode()))
        assert await mine.next(1.0) == [_processing(1)]
        hub.on_status_record(_Record(other.encode(), _processing(1).encode()))  # key ≠ event's task
        assert await theirs.next(1.0) is None
        hub.on_status_record(_Record(None, b"x"))
    assert not hub._watchers  # unsubscribed on exit
