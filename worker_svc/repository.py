"""The worker's reads of the task store (its writes all go through api_svc's TaskLifecycleService):
how many tasks are in each state, for WorkerStatusService."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from tasks.model import Status


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    processing: int
    completed_since: int
    failed_since: int


class TaskCounts:
    def __init__(self, tasks: AsyncCollection[dict[str, Any]]) -> None:
        self._tasks = tasks

    async def queue(self, since: datetime) -> QueueCounts:
        """Tasks waiting and in work now, and those completed or failed since `since`."""

        async def count(query: dict[str, Any]) -> int:
            return await self._tasks.count_documents(query)

        finished_since = {"$gte": since}
        return QueueCounts(
            pending=await count({"status": Status.PENDING.value}),
            processing=await count({"status": Status.PROCESSING.value}),
            completed_since=await count({"status": Status.COMPLETED.value, "completed_at": finished_since}),
            failed_since=await count({"status": Status.FAILED.value, "completed_at": finished_since}),
        )
