"""WatchTask's loop: events carry the task, so a watcher reads the store once, and again only
when an event cannot be ordered against what it holds. Pure logic: the repository is a fake."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest

from api_svc.preset_repository import PresetRepository
from api_svc.quota_repository import QuotaRepository
from api_svc.repository import TaskRepository
from api_svc.service import Limits, TaskService
from api_svc.watch import WatchHub
from common.blobstore import BlobStore
from common.kafka import AsyncProducer
from tasks.events import StatusEvent
from tasks.model import Status

pytestmark = pytest.mark.unit

TASK = "c" * 32
OWNER = "owner"
T0 = datetime(2026, 12, 1, tzinfo=UTC)


class _Store:
    """Stands in for TaskRepository.get, counting reads."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.reads = 0

    async def get(self, owner_id: str, task_id: str) -> dict[str, Any] | None:
        self.reads += 1
        return dict(self.document) if owner_id == OWNER and task_id == TASK else None


def _task(status: Status, attempts: int, seconds: int) -> dict[str, Any]:
    return {
        "_id": TASK,
        "owner_id": OWNER,
        "status": status.value,
        "attempts": attempts,
        "updated_at": T0 + timedelta(seconds=seconds),
    }


def _service(store: _Store, hub: WatchHub) -> TaskService:
    return TaskService(
        cast(TaskRepository, store),
        cast(BlobStore, None),
        cast(AsyncProducer, None),
        hub,
        Limits(1, 1),
        presets=cast(PresetRepository, None),
        quotas=cast(QuotaRepository, None),
    )


async def _next(stream: AsyncIterator[dict[str, Any]]) -> dict[str, Any]:
    return await asyncio.wait_for(anext(stream), 5)


async def test_a_watcher_reads_once_and_follows_the_events() -> None:
    store, hub = _Store(_task(Status.PENDING, 0, 0)), WatchHub()
    stream = _service(store, hub).watch(OWNER, TASK)
    assert (await _next(stream))["status"] == "PENDING"
    hub.publish(TASK, StatusEvent(TASK, Status.PROCESSING, _task(Status.PROCESSING, 1, 1)))
    assert (await _next(stream))["status"] == "PROCESSING"
    hub.publish(TASK, StatusEvent(TASK, Status.PROCESSING, _task(Status.PROCESSING, 1, 1)))  # a duplicate
    hub.publish(TASK, StatusEvent(TASK, Status.COMPLETED, {**_task(Status.COMPLETED, 1, 2), "result": {"w": 1}}))
    final = await _next(stream)
    assert final["status"] == "COMPLETED" and final["result"] == {"w": 1}
    with pytest.raises(StopAsyncIteration):
        await _next(stream)
    assert store.reads == 1


async def test_an_event_it_cannot_order_makes_it_read_the_task() -> None:
    store, hub = _Store(_task(Status.PROCESSING, 1, 1)), WatchHub()
    stream = _service(store, hub).watch(OWNER, TASK)
    assert (await _next(stream))["status"] == "PROCESSING"
    store.document = _task(Status.PENDING, 1, 2)  # handed back by a worker shutting down
    hub.publish(TASK, StatusEvent(TASK, Status.PENDING, store.document))
    assert (await _next(stream))["status"] == "PENDING"
    assert store.reads == 2
    store.document = _task(Status.CANCELLED, 1, 3)
    hub.publish(TASK, None)  # something the events cannot tell (e.g. an undecodable record)
    assert (await _next(stream))["status"] == "CANCELLED"
    assert store.reads == 3


async def test_stale_events_neither_read_nor_yield() -> None:
    store, hub = _Store(_task(Status.PROCESSING, 2, 5)), WatchHub()
    stream = _service(store, hub).watch(OWNER, TASK)
    await _next(stream)
    hub.publish(TASK, StatusEvent(TASK, Status.PROCESSING, _task(Status.PROCESSING, 1, 1)))  # overtaken
    hub.publish(TASK, StatusEvent(TASK, Status.FAILED, _task(Status.FAILED, 2, 6)))
    assert (await _next(stream))["status"] == "FAILED"
    assert store.reads == 1
