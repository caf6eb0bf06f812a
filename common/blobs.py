"""Image bytes in MongoDB through GridFS: works on real MongoDB and on FerretDB v1 (proven by
tests/integration/test_blobs.py), so uploads and results need no second storage system."""

from __future__ import annotations

import contextlib
from typing import Any

from bson import ObjectId
from gridfs import AsyncGridFSBucket
from gridfs.errors import NoFile
from pymongo.asynchronous.database import AsyncDatabase

BUCKET = "blobs"


class BlobStore:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self._bucket = AsyncGridFSBucket(database, bucket_name=BUCKET)

    async def put(self, data: bytes, *, filename: str, metadata: dict[str, Any]) -> str:
        blob_id = await self._bucket.upload_from_stream(filename or "image", data, metadata=metadata)
        return str(blob_id)

    async def get(self, blob_id: str) -> bytes | None:
        try:
            stream = await self._bucket.open_download_stream(ObjectId(blob_id))
        except NoFile:
            return None
        return await stream.read()

    async def delete(self, blob_id: str) -> None:
        """Idempotent: a blob that is already gone is fine."""
        with contextlib.suppress(NoFile):
            await self._bucket.delete(ObjectId(blob_id))
