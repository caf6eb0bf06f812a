"""Fans task-status events out to the WatchTask streams of this replica."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any


class WatchHub:
    def __init__(self) -> None:
        self._watchers: dict[str, set[asyncio.Queue[None]]] = {}

    def notify(self, task_id: str) -> None:
        """Something about the task changed: wake its watchers (they re-read the task)."""
        for queue in self._watchers.get(task_id, ()):
            # A pending wake-up already covers this one: the watcher reads the latest state.
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def on_status_record(self, record: Any) -> None:
        key = record.key()
        if key:
            self.notify(key.decode(errors="replace"))

    @contextlib.contextmanager
    def subscribe(self, task_id: str) -> Iterator[asyncio.Queue[None]]:
        queue: asyncio.Queue[None] = asyncio.Queue(maxsize=1)
        self._watchers.setdefault(task_id, set()).add(queue)
        try:
            yield queue
        finally:
            watchers = self._watchers.get(task_id)
            if watchers is not None:
                watchers.discard(queue)
                if not watchers:
                    del self._watchers[task_id]
