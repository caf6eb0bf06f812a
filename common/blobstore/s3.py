"""Blobs in any S3-compatible object store (AWS S3, SeaweedFS, MinIO, ...), through obstore:
a Rust client that signs requests and moves the bytes outside the interpreter.

A blob small enough for one request is one PUT; a larger one streams through a multipart upload
in parts of PART_BYTES, so memory stays bounded whatever the size. S3 makes an object visible
only when its PUT or multipart upload completes: a failed put leaves nothing a reader can see.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC
from typing import TYPE_CHECKING, Any

import obstore
from obstore.exceptions import NotFoundError
from obstore.store import S3Store

from common.blobstore.base import (
    READ_CHUNK_BYTES,
    Blob,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    Chunks,
    Measured,
    StoredKey,
    as_chunks,
    check_key,
)

if TYPE_CHECKING:
    from obstore.store import S3Config  # a TypedDict that exists for type checkers only

# S3's smallest multipart part (but the last) is 5 MiB; a blob up to this size is one PUT.
PART_BYTES = 5 * 1024 * 1024


class _ObjectBlob(Blob):
    def __init__(self, result: Any) -> None:
        self._result = result
        self.size = int(result.meta["size"])

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._result.stream(min_chunk_size=READ_CHUNK_BYTES):
            yield bytes(chunk)

    async def read(self) -> bytes:
        return bytes(await self._result.bytes_async())


class S3BlobStore(BlobStore):
    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str,
        region: str,
        access_key_id: str,
        secret_access_key: str,
    ) -> None:
        config: S3Config = {"region": region}
        if access_key_id:
            config |= {"access_key_id": access_key_id, "secret_access_key": secret_access_key}
        else:
            config["skip_signature"] = True
        if endpoint_url:
            # Path-style addressing: what self-hosted S3 servers expect.
            config |= {"endpoint": endpoint_url, "virtual_hosted_style_request": False}
        self._store = S3Store(
            bucket,
            config=config,
            client_options={"allow_http": endpoint_url.startswith("http://"), "timeout": "60s"},
        )

    async def put(self, key: str, data: bytes | Chunks, *, max_bytes: int | None = None) -> BlobInfo:
        check_key(key)
        measured = Measured(max_bytes)
        source = as_chunks(data)
        head: list[bytes] = []
        buffered = 0
        async for chunk in source:
            await measured.add_off_loop(chunk)
            head.append(chunk)
            buffered += len(chunk)
            if buffered > PART_BYTES:
                break
        else:  # the whole blob fits one request
            await obstore.put_async(self._store, key, b"".join(head), use_multipart=False)
            return measured.info()

        async def rest() -> AsyncIterator[bytes]:
            for chunk in head:
                yield chunk
            head.clear()
            async for chunk in source:
                await measured.add_off_loop(chunk)  # BlobTooLarge here aborts the multipart upload
                yield chunk

        await obstore.put_async(self._store, key, rest(), chunk_size=PART_BYTES, max_concurrency=2)
        return measured.info()

    async def open(self, key: str) -> Blob:
        try:
            return _ObjectBlob(await obstore.get_async(self._store, check_key(key)))
        except (NotFoundError, FileNotFoundError) as exc:
            raise BlobNotFound(key) from exc

    async def delete(self, key: str) -> None:
        await obstore.delete_async(self._store, check_key(key))

    async def size(self, key: str) -> int | None:
        try:
            meta = await obstore.head_async(self._store, check_key(key))
        except (NotFoundError, FileNotFoundError):
            return None
        return int(meta["size"])

    async def list(self, prefix: str) -> AsyncIterator[StoredKey]:
        try:
            async for page in obstore.list(self._store, prefix=prefix or None, chunk_size=1000):
                for meta in page:
                    modified = meta["last_modified"]
                    yield StoredKey(str(meta["path"]), modified if modified.tzinfo else modified.replace(tzinfo=UTC))
        except (NotFoundError, FileNotFoundError):
            return  # no bucket yet (created by the first write): nothing is stored
