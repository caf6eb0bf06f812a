"""The only code of api_svc that talks to MongoDB about presets (collection `presets`).

A preset document: `_id` (an id of its own), `owner_id`, `name`, `operations` and `output` (the
proto's dict form, as a task stores them), `created_at`, `updated_at`. (owner_id, name) is
unique by index; api_svc is the only writer.
"""

from __future__ import annotations

from typing import Any

from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from api_svc.repository import store_errors
from common.errors import AlreadyExists

Document = dict[str, Any]
PRESETS = "presets"


class PresetRepository:
    def __init__(self, database: AsyncDatabase[Document]) -> None:
        self._presets = database[PRESETS]

    async def ensure_indexes(self) -> None:
        # A plain unique compound index: what FerretDB v1 and MongoDB both support. It is what
        # makes a duplicate name ALREADY_EXISTS even for two creates racing each other, and the
        # order ListPresets pages in.
        await self._presets.create_index([("owner_id", ASCENDING), ("name", ASCENDING)], unique=True)

    async def insert(self, document: Document) -> None:
        """Stores a new preset; AlreadyExists if the owner has one of that name."""
        async with store_errors():
            try:
                await self._presets.insert_one(document)
            except DuplicateKeyError as exc:
                raise AlreadyExists(
                    f"you already have a preset named {document['name']!r}; update it or choose another name"
                ) from exc

    async def count(self, owner_id: str) -> int:
        async with store_errors():
            return await self._presets.count_documents({"owner_id": owner_id})

    async def get(self, owner_id: str, name: str) -> Document | None:
        async with store_errors():
            return await self._presets.find_one({"owner_id": owner_id, "name": name})

    async def page(self, owner_id: str, *, limit: int, after: str | None) -> list[Document]:
        query: Document = {"owner_id": owner_id}
        if after is not None:
            query["name"] = {"$gt": after}
        async with store_errors():
            cursor = self._presets.find(query).sort("name", ASCENDING).limit(limit)
            return [document async for document in cursor]

    async def replace_pipeline(self, owner_id: str, name: str, fields: Document) -> Document | None:
        """Sets the preset's operations, output and updated_at; the preset after, or None if
        the owner has no preset of that name."""
        async with store_errors():
            return await self._presets.find_one_and_update(
                {"owner_id": owner_id, "name": name}, {"$set": fields}, return_document=ReturnDocument.AFTER
            )

    async def delete(self, owner_id: str, name: str) -> bool:
        async with store_errors():
            result = await self._presets.delete_one({"owner_id": owner_id, "name": name})
            return result.deleted_count > 0

    async def delete_by_id(self, preset_id: str) -> None:
        async with store_errors():
            await self._presets.delete_one({"_id": preset_id})
