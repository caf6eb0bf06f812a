"""The only code of api_svc that talks to MongoDB (tasks, their locks, idempotency keys, uploads)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from common.errors import Unavailable
from tasks.lifecycle import (
    TASK_LOCKS,
    OnCommit,
    TaskClaims,
    cancel,
    ensure_lock_indexes,
    final_lock_id,
    forget,
    reopen_failed,
    settle_if_final,
    terminal_fields,
)
from tasks.model import IDEMPOTENCY, OUTBOX, TASKS, TERMINAL, UPLOADS, Status, utcnow

Document = dict[str, Any]
UNAVAILABLE_MESSAGE = "the task store is unavailable; nothing was saved, try again shortly"


@contextlib.asynccontextmanager
async def store_errors() -> AsyncIterator[None]:
    """MongoDB being unreachable is UNAVAILABLE for the caller, never INTERNAL."""
    try:
        yield
    except ConnectionFailure as exc:
        raise Unavailable(UNAVAILABLE_MESSAGE) from exc


class TaskRepository:
    def __init__(self, database: AsyncDatabase[Document], on_commit: OnCommit | None = None) -> None:
        # Told of every outcome committed through this repository (api_svc.metrics counts them).
        self._on_commit = on_commit
        self._tasks = database[TASKS]
        self._keys = database[IDEMPOTENCY]
        # Tasks whose publish Kafka did not confirm (written only then: a task that Kafka took at
        # once costs no outbox write). A collection of its own, not a flag on the task:
        # FerretDB v1 applies an update as read-modify-write of the whole document, so the API
        # must not write a task while a worker may be claiming it (a lost update un-claims it).
        self._outbox = database[OUTBOX]
        self._locks = database[TASK_LOCKS]
        self._uploads = database[UPLOADS]

    async def ensure_indexes(self) -> None:
        # Only plain and compound indexes: what FerretDB v1 and MongoDB both support.
        await self._tasks.create_index([("owner_id", ASCENDING), ("created_at", DESCENDING), ("_id", DESCENDING)])
        await self._tasks.create_index([("owner_id", ASCENDING), ("status", ASCENDING), ("created_at", DESCENDING)])
        await self._tasks.create_index([("status", ASCENDING), ("updated_at", ASCENDING)])
        await self._tasks.create_index([("status", ASCENDING), ("lease_until", ASCENDING)])
        await self._outbox.create_index([("created_at", ASCENDING)])
        await self._uploads.create_index([("owner_id", ASCENDING), ("created_at", DESCENDING)])
        await ensure_lock_indexes(self._locks)

    async def insert(self, document: Document) -> bool:
        """Stores a new task; False if a task with its id exists (a concurrent retry of the same
        idempotent create stored it)."""
        async with store_errors():
            try:
                await self._tasks.insert_one(document)
            except DuplicateKeyError:
                return False
            return True

    async def add_to_outbox(self, task_id: str) -> None:
        """A stored task whose publish Kafka did not confirm: the relay publishes it again."""
        async with store_errors():
            await self._outbox.replace_one({"_id": task_id}, {"_id": task_id, "created_at": utcnow()}, upsert=True)

    async def claim_idempotency_key(self, owner_id: str, key: str, task_id: str, fingerprint: str) -> Document | None:
        """Records key → task; returns the earlier record if the key was used before."""
        async with store_errors():
            try:
                await self._keys.insert_one(
                    {"_id": f"{owner_id}:{key}", "task_id": task_id, "fingerprint": fingerprint, "created_at": utcnow()}
                )
            except DuplicateKeyError:
                return await self._keys.find_one({"_id": f"{owner_id}:{key}"})
            return None

    async def idempotency_record(self, owner_id: str, key: str) -> Document | None:
        """The record of an idempotency key (task_id, fingerprint), if it was used."""
        async with store_errors():
            return await self._keys.find_one({"_id": f"{owner_id}:{key}"})

    async def get(self, owner_id: str, task_id: str) -> Document | None:
        """The task as its outcome stands. A task that is not terminal although its outcome is
        committed (its writer died after the final lock, or a late claim write landed on top of
        the settled outcome: FerretDB's updates are read-modify-write) is settled first, so no
        reader sees it running after a watcher was told it ended. One more read, for tasks in
        flight only."""
        async with store_errors():
            document = await self._tasks.find_one({"_id": task_id, "owner_id": owner_id})
            if document is None or Status(document["status"]) in TERMINAL:
                return document
            terminal = await settle_if_final(self._tasks, self._locks, task_id)
            return document if terminal is None else {**document, **terminal}

    async def page(
        self, owner_id: str, *, status: Status | None, limit: int, after: tuple[datetime, str] | None
    ) -> list[Document]:
        query: Document = {"owner_id": owner_id}
        if status is not None:
            query["status"] = status.value
        if after is not None:
            created_at, task_id = after
            query["$or"] = [{"created_at": {"$lt": created_at}}, {"created_at": created_at, "_id": {"$lt": task_id}}]
        async with store_errors():
            cursor = self._tasks.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)]).limit(limit)
            return [document async for document in cursor]

    async def mark_published(self, task_id: str) -> None:
        async with store_errors():
            await self._outbox.delete_one({"_id": task_id})

    async def outbox_size(self) -> int:
        """Tasks waiting in the outbox for Kafka (a gauge, api_svc.metrics)."""
        async with store_errors():
            return await self._outbox.count_documents({})

    async def unpublished(self, limit: int = 100) -> list[str]:
        async with store_errors():
            cursor = self._outbox.find({}, {"_id": 1}).sort("created_at", ASCENDING).limit(limit)
            return [document["_id"] async for document in cursor]

    async def stranded(self, pending_for: timedelta, limit: int = 100) -> list[str]:
        """Tasks that look forgotten: PENDING for long, or PROCESSING under an expired lease
        (its worker died and no redelivery took it over). Publishing them again is safe: a
        worker acknowledges a duplicate of a finished or leased task without work."""
        now = utcnow()
        query = {
            "$or": [
                {"status": Status.PENDING.value, "updated_at": {"$lte": now - pending_for}},
                {"status": Status.PROCESSING.value, "lease_until": {"$lt": now}},
            ]
        }
        async with store_errors():
            cursor = self._tasks.find(query, {"_id": 1}).limit(limit)
            return [document["_id"] async for document in cursor]

    async def settle_if_final(self, task_id: str) -> Document | None:
        """If the task has a committed outcome its document does not show (the writer died
        between the final lock and the task write), writes it; returns the task as settled."""
        async with store_errors():
            if await settle_if_final(self._tasks, self._locks, task_id) is None:
                return None
            return await self._tasks.find_one({"_id": task_id})

    async def queue_counts(self, finished_since: datetime) -> dict[str, int]:
        """Tasks waiting and in work now, and those completed or failed since `finished_since`."""
        since = {"$gte": finished_since}
        queries: dict[str, Document] = {
            "pending": {"status": Status.PENDING.value},
            "processing": {"status": Status.PROCESSING.value},
            "completed_since": {"status": Status.COMPLETED.value, "completed_at": since},
            "failed_since": {"status": Status.FAILED.value, "completed_at": since},
        }
        async with store_errors():
            return {name: await self._tasks.count_documents(query) for name, query in queries.items()}

    def claims(self, worker_id: str, lease: timedelta, max_attempts: int) -> TaskClaims:
        """A worker's side of the lifecycle on this service's collections (TaskLifecycleService)."""
        return TaskClaims(
            self._tasks, self._locks, worker_id, lease, max_attempts=max_attempts, on_commit=self._on_commit
        )

    async def cancel(self, owner_id: str, task_id: str) -> tuple[Document, Document] | None:
        """PENDING/PROCESSING → CANCELLED (tasks.lifecycle.cancel): (the task before, the fields
        written); None if the task is not (or no longer) cancellable."""
        async with store_errors():
            return await cancel(self._tasks, self._locks, owner_id, task_id, on_commit=self._on_commit)

    async def reopen(self, task_id: str, stale_after: float = 60.0) -> tuple[str, Document] | None:
        """FAILED → PENDING for a replay (tasks.lifecycle.reopen_failed)."""
        async with store_errors():
            return await reopen_failed(self._tasks, self._locks, task_id, stale_after)

    async def delete(self, owner_id: str, task_id: str) -> Document | None:
        async with store_errors():
            document = await self._tasks.find_one_and_delete({"_id": task_id, "owner_id": owner_id})
            if document is None:
                return None
            await self._outbox.delete_one({"_id": task_id})
            # The outcome as committed, where the document lagged behind it (a lost update): the
            # caller deletes the result it names.
            final = await self._locks.find_one({"_id": final_lock_id(task_id)})
            if final is not None:
                document = {**document, **terminal_fields(final)}
            await forget(self._locks, task_id)
            if document.get("idempotency_key"):
                # Only the key that points at this task (a key is never re-pointed, but a
                # record of another task must not go with this one).
                await self._keys.delete_one({"_id": f"{owner_id}:{document['idempotency_key']}", "task_id": task_id})
            return document

    # -- uploads -----------------------------------------------------------------------------
    async def insert_upload(self, document: Document) -> None:
        async with store_errors():
            await self._uploads.insert_one(document)

    async def get_upload(self, owner_id: str, upload_id: str) -> Document | None:
        async with store_errors():
            return await self._uploads.find_one({"_id": upload_id, "owner_id": owner_id})

    # -- the blob sweep ------------------------------------------------------------------------
    async def blob_references(self, task_ids: list[str]) -> dict[str, Document]:
        """For each existing task among `task_ids`: its status and the blob keys it holds."""
        projection = {"status": 1, "source.upload.blob_key": 1, "result": 1}
        async with store_errors():
            cursor = self._tasks.find({"_id": {"$in": task_ids}}, projection)
            return {document["_id"]: document async for document in cursor}

    async def existing_uploads(self, upload_ids: list[str]) -> set[str]:
        async with store_errors():
            cursor = self._uploads.find({"_id": {"$in": upload_ids}}, {"_id": 1})
            return {document["_id"] async for document in cursor}
