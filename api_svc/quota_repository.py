"""The only code of api_svc that talks to MongoDB about quotas: administrators' overrides
(`quota_overrides`), the active-task slots (insert-once locks in `task_locks`, see
tasks.lifecycle), the day marks that count tasks created per UTC day (`quota_day_marks`) and
the sums behind stored bytes. The rules are api_svc.quotas'; decision 0020 says why slots and
marks rather than counters (FerretDB v1 updates are read-modify-write: no atomic `$inc`).
"""

from __future__ import annotations

import asyncio
from datetime import date
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from api_svc.repository import store_errors
from tasks.lifecycle import ACTIVE_SLOT, TASK_LOCKS, release_active_slot, take_active_slot
from tasks.model import TASKS, UPLOADS, Status, utcnow

Document = dict[str, Any]
QUOTA_OVERRIDES = "quota_overrides"
DAY_MARKS = "quota_day_marks"
ACTIVE = [Status.PENDING.value, Status.PROCESSING.value]


def day_mark_id(owner_id: str, day: date, index: int) -> str:
    return f"{owner_id}:day:{day.isoformat()}:{index}"


class QuotaRepository:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._overrides = database[QUOTA_OVERRIDES]
        self._marks = database[DAY_MARKS]
        self._locks = database[TASK_LOCKS]
        self._tasks = database[TASKS]
        self._uploads = database[UPLOADS]

    async def ensure_indexes(self) -> None:
        # Plain compound indexes only (FerretDB v1 and MongoDB alike).
        await self._locks.create_index([("owner_id", ASCENDING), ("kind", ASCENDING)])
        await self._marks.create_index([("owner_id", ASCENDING), ("day", ASCENDING)])
        await self._marks.create_index([("day", ASCENDING)])

    # -- overrides ---------------------------------------------------------------------------
    async def overrides(self, owner_id: str) -> Document:
        async with store_errors():
            found = await self._overrides.find_one({"_id": owner_id})
        return {} if found is None else found.get("limits", {})

    async def set_overrides(self, owner_id: str, limits: dict[str, int], by: str) -> None:
        """Replaces the user's overrides; none left: the record goes."""
        async with store_errors():
            if not limits:
                await self._overrides.delete_one({"_id": owner_id})
                return
            document = {"_id": owner_id, "limits": limits, "updated_by": by, "updated_at": utcnow()}
            await self._overrides.replace_one({"_id": owner_id}, document, upsert=True)

    # -- active tasks: slots -----------------------------------------------------------------
    async def active_slots(self, owner_id: str) -> list[Document]:
        async with store_errors():
            cursor = self._locks.find({"owner_id": owner_id, "kind": ACTIVE_SLOT})
            return [document async for document in cursor]

    async def take_active_slot(self, owner_id: str, index: int, task_id: str) -> bool:
        async with store_errors():
            return await take_active_slot(self._locks, owner_id, index, task_id)

    async def release_active_slot(self, task_id: str) -> None:
        async with store_errors():
            await release_active_slot(self._locks, task_id)

    async def release_slot_of(self, slot_id: str, task_id: str) -> None:
        """Frees a stale slot, only while it still names the task found stale."""
        async with store_errors():
            await self._locks.delete_one({"_id": slot_id, "task_id": task_id})

    async def task_statuses(self, task_ids: list[str]) -> dict[str, str]:
        async with store_errors():
            cursor = self._tasks.find({"_id": {"$in": task_ids}}, {"status": 1})
            return {document["_id"]: document["status"] async for document in cursor}

    async def active_tasks(self, owner_id: str) -> int:
        """What the user has PENDING or PROCESSING, from the tasks themselves."""
        async with store_errors():
            return await self._tasks.count_documents({"owner_id": owner_id, "status": {"$in": ACTIVE}})

    # -- tasks per day: marks ----------------------------------------------------------------
    async def day_marks(self, owner_id: str, day: date) -> int:
        async with store_errors():
            return await self._marks.count_documents({"owner_id": owner_id, "day": day.isoformat()})

    async def day_mark_indices(self, owner_id: str, day: date) -> set[int]:
        async with store_errors():
            cursor = self._marks.find({"owner_id": owner_id, "day": day.isoformat()}, {"index": 1})
            return {int(document["index"]) async for document in cursor}

    async def take_day_mark(self, owner_id: str, day: date, index: int, task_id: str) -> bool:
        document = {
            "_id": day_mark_id(owner_id, day, index),
            "owner_id": owner_id,
            "day": day.isoformat(),
            "index": index,
            "task_id": task_id,
        }
        async with store_errors():
            try:
                await self._marks.insert_one(document)
            except DuplicateKeyError:
                return False
            return True

    async def release_day_mark(self, owner_id: str, day: date, index: int) -> None:
        async with store_errors():
            await self._marks.delete_one({"_id": day_mark_id(owner_id, day, index)})

    async def prune_day_marks(self, before: date) -> int:
        """Marks of days that are over count nothing any more."""
        async with store_errors():
            result = await self._marks.delete_many({"day": {"$lt": before.isoformat()}})
            return result.deleted_count

    # -- stored bytes ------------------------------------------------------------------------
    async def stored_bytes(self, owner_id: str | None) -> int:
        """Uploads, results (every variant's) and inline sources of the user: one `$sum` per
        field and pipeline, run side by side. One `$group` cannot hold them all: FerretDB v1
        fills only its first accumulator and answers 0 for the others (seen here, 1.24). No
        owner: every user's together (the stored-bytes gauge, api_svc.metrics)."""
        sums = (
            (self._uploads, "$size_bytes"),
            (self._tasks, "$result.size_bytes"),
            (self._tasks, "$result.variant_bytes"),
            (self._tasks, "$inline_bytes"),
        )
        async with store_errors():
            match = {} if owner_id is None else {"owner_id": owner_id}
            totals = await asyncio.gather(*(self._sum(collection, match, path) for collection, path in sums))
        return sum(totals)

    async def _sum(self, collection: Any, match: Document, path: str) -> int:
        pipeline = [{"$match": match}, {"$group": {"_id": None, "total": {"$sum": path}}}]
        async for document in await collection.aggregate(pipeline):
            return int(document.get("total") or 0)
        return 0
