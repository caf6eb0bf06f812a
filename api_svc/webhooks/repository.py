"""The only code of the webhooks that talks to MongoDB: users' webhook settings, the deliveries
and their attempt locks, and — read only — the tasks and final locks their events come from.

Like the task lifecycle (tasks.lifecycle), exclusivity comes from inserts, never from
conditional updates (FerretDB v1's updates are read-modify-write, decision 0009):
- a delivery's `_id` is its event's id, named by the task's final lock when the outcome was
  committed: whoever turns the lock into a delivery first inserts it, the others find it there;
- attempt n of a delivery belongs to whoever inserts `<event>:attempt:<n>` (with a lease): of
  two api_svc replicas finding the same delivery due, one sends it. A sender that dies mid-
  attempt leaves a lock whose lease runs out; the next sender takes n + 1 and sends the same
  event again (at least once: the receiver dedupes on webhook-id).
- only the holder of the current attempt writes a delivery after its insert, so its updates
  never race.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from api_svc.repository import store_errors
from tasks.lifecycle import TASK_LOCKS, webhook_handed_over, webhooks_due
from tasks.model import TASKS, as_utc, utcnow

Document = dict[str, Any]

SETTINGS = "webhook_settings"
DELIVERIES = "webhook_deliveries"
WEBHOOK_LOCKS = "webhook_locks"

PENDING = "PENDING"
DELIVERED = "DELIVERED"
FAILED = "FAILED"


class WebhookRepository:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._settings = database[SETTINGS]
        self._deliveries = database[DELIVERIES]
        self._locks = database[WEBHOOK_LOCKS]
        self._tasks = database[TASKS]
        self._task_locks = database[TASK_LOCKS]

    async def ensure_indexes(self) -> None:
        await self._deliveries.create_index([("state", ASCENDING), ("next_attempt_at", ASCENDING)])
        await self._deliveries.create_index([("task_id", ASCENDING), ("created_at", ASCENDING)])
        await self._locks.create_index([("event_id", ASCENDING)])

    # -- a user's settings -------------------------------------------------------------------
    async def settings(self, owner_id: str) -> Document | None:
        async with store_errors():
            return await self._settings.find_one({"_id": owner_id})

    async def set_default_url(self, owner_id: str, url: str | None) -> Document | None:
        async with store_errors():
            await self._settings.update_one(
                {"_id": owner_id}, {"$set": {"default_url": url, "updated_at": utcnow()}}, upsert=True
            )
            return await self._settings.find_one({"_id": owner_id})

    async def set_secret(self, owner_id: str, secret: str) -> Document | None:
        now = utcnow()
        async with store_errors():
            await self._settings.update_one(
                {"_id": owner_id},
                {"$set": {"secret": secret, "secret_rotated_at": now, "updated_at": now}},
                upsert=True,
            )
            return await self._settings.find_one({"_id": owner_id})

    # -- from committed outcomes to deliveries -----------------------------------------------
    async def ends_due(self, limit: int) -> list[Document]:
        """Final locks whose webhook event has no delivery yet."""
        async with store_errors():
            return await webhooks_due(self._task_locks, limit)

    async def task(self, task_id: str) -> Document | None:
        async with store_errors():
            return await self._tasks.find_one({"_id": task_id})

    async def create(self, delivery: Document) -> bool:
        """Stores a new delivery; False if its event already has one (another replica, or this
        one before a crash, got there first)."""
        async with store_errors():
            try:
                await self._deliveries.insert_one(delivery)
            except DuplicateKeyError:
                return False
            return True

    async def handed_over(self, lock_id: str) -> None:
        async with store_errors():
            await webhook_handed_over(self._task_locks, lock_id)

    # -- sending -----------------------------------------------------------------------------
    async def due(self, now: datetime, limit: int) -> list[Document]:
        async with store_errors():
            query = {"state": PENDING, "next_attempt_at": {"$lte": now}}
            return await self._deliveries.find(query).sort("next_attempt_at", ASCENDING).limit(limit).to_list()

    async def take_attempt(self, delivery: Document, owner: str, lease_until: datetime) -> int | None:
        """Takes the next attempt of the delivery: its number, or None if another sender holds
        one under a live lease. Attempts whose holder's lease ran out unrecorded (it died) are
        skipped, so the same event goes out again."""
        event_id = delivery["_id"]
        # After the highest recorded one (`n`): one that died unrecorded is below it, or is
        # the lock found next, whose lease has run out.
        attempt = max((int(done["n"]) for done in delivery.get("attempts", [])), default=0) + 1
        now = utcnow()
        async with store_errors():
            while True:
                lock_id = f"{event_id}:attempt:{attempt}"
                try:
                    await self._locks.insert_one(
                        {"_id": lock_id, "event_id": event_id, "owner": owner, "lease_until": lease_until}
                    )
                except DuplicateKeyError:
                    lock = await self._locks.find_one({"_id": lock_id})
                    if lock is not None and as_utc(lock["lease_until"]) > now:
                        return None
                    attempt += 1
                    continue
                return attempt

    async def record(self, event_id: str, attempt: Document, fields: Document) -> None:
        """Adds an attempt to the delivery and sets what it decided (state, next attempt)."""
        async with store_errors():
            await self._deliveries.update_one({"_id": event_id}, {"$push": {"attempts": attempt}, "$set": fields})

    async def release(self, event_id: str) -> None:
        """A delivery that ended keeps no attempt locks."""
        async with store_errors():
            await self._locks.delete_many({"event_id": event_id})

    # -- reading ------------------------------------------------------------------------------
    async def for_task(self, task_id: str) -> list[Document]:
        async with store_errors():
            return await self._deliveries.find({"task_id": task_id}).sort("created_at", ASCENDING).to_list()
