"""Fans task-status events out to the WatchTask streams of this replica."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from opentelemetry import trace

from common.tracing import extract, kafka_attributes
from tasks.events import StatusEvent

_tracer = trace.get_tracer(__name__)

# Events a slow watcher may have pending before it is told to read the task instead.
MAX_PENDING_EVENTS = 8


class Subscription:
    """What happened to one task since its watcher last looked."""

    def __init__(self) -> None:
        self._events: list[StatusEvent] = []
        self._reread = False
        self._changed = asyncio.Event()

    def push(self, event: StatusEvent | None) -> None:
        """An event, or None: something changed that only the task itself can tell."""
        if event is None or len(self._events) >= MAX_PENDING_EVENTS:
            self._reread = True
        else:
            self._events.append(event)
        self._changed.set()

    async def next(self, idle_seconds: float) -> list[StatusEvent] | None:
        """The events since the last call, in arrival order; None when the watcher must read
        the task (an undecodable or dropped event, a deletion, or nothing for `idle_seconds`)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(idle_seconds):  # waits in this task (wait_for adds one)
                await self._changed.wait()
        events, reread = self._events, self._reread or not self._changed.is_set()
        self._events, self._reread = [], False
        self._changed.clear()
        return None if reread else events


class WatchHub:
    def __init__(self) -> None:
        self._watchers: dict[str, set[Subscription]] = {}

    def publish(self, task_id: str, event: StatusEvent | None) -> None:
        for subscription in self._watchers.get(task_id, ()):
            subscription.push(event)

    def on_status_record(self, record: Any) -> None:
        key = record.key()
        if key:
            task_id = key.decode(errors="replace")
            event = StatusEvent.decode(record.value())
            with self._delivering(record, task_id):
                self.publish(task_id, event if event is not None and event.task_id == task_id else None)

    def _delivering(self, record: Any, task_id: str) -> contextlib.AbstractContextManager[object]:
        """The end of a task's trace: its status event reaching this replica's watchers (a span
        only when the record carries a trace)."""
        context = extract(record.headers())
        if not trace.get_current_span(context).get_span_context().is_valid:
            return contextlib.nullcontext()
        attributes = kafka_attributes(record.topic(), "process", **{"pixelflow.watchers": self.watching(task_id)})
        return _tracer.start_as_current_span(
            f"{record.topic()} deliver", context=context, kind=trace.SpanKind.CONSUMER, attributes=attributes
        )

    def watching(self, task_id: str) -> int:
        return len(self._watchers.get(task_id, ()))

    @contextlib.contextmanager
    def subscribe(self, task_id: str) -> Iterator[Subscription]:
        subscription = Subscription()
        self._watchers.setdefault(task_id, set()).add(subscription)
        try:
            yield subscription
        finally:
            watchers = self._watchers.get(task_id)
            if watchers is not None:
                watchers.discard(subscription)
                if not watchers:
                    del self._watchers[task_id]
