"""The BlobStore interface every backend implements, and the pieces they share."""

from __future__ import annotations

import abc
import asyncio
import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

# Keys are ours (common.blobstore.keys): lower-case ids and a few separators, never "..".
_KEY = re.compile(r"^[a-z0-9][a-z0-9._-]*(/[a-z0-9][a-z0-9._-]*)*$")
# Reads hand out chunks of about this size: large enough to keep per-chunk overhead small,
# small enough that a download holds little memory.
READ_CHUNK_BYTES = 1024 * 1024

Chunks = AsyncIterable[bytes]


class BlobNotFound(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(f"no blob {key}")
        self.key = key


class BlobTooLarge(Exception):
    """The stream passed the put's byte limit; nothing was stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class BlobInfo:
    """What a put measured while it streamed the bytes through."""

    size: int
    sha256: str


@dataclass(frozen=True)
class StoredKey:
    key: str
    modified: datetime


class Blob(abc.ABC):
    """An open blob: its size is known before the first byte is read."""

    size: int

    @abc.abstractmethod
    def chunks(self) -> AsyncIterator[bytes]: ...

    async def read(self) -> bytes:
        return b"".join([chunk async for chunk in self.chunks()])


class BlobStore(abc.ABC):
    @abc.abstractmethod
    async def put(self, key: str, data: bytes | Chunks, *, max_bytes: int | None = None) -> BlobInfo:
        """Stores `data` (bytes, or chunks streamed through) under `key`, replacing any blob
        there. Raises BlobTooLarge past `max_bytes`, and whatever the chunk source raises (a
        truncated upload); in every such case nothing is stored."""

    @abc.abstractmethod
    async def open(self, key: str) -> Blob:
        """The blob, ready to stream; BlobNotFound if there is none."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Idempotent: a blob that is already gone is fine."""

    @abc.abstractmethod
    async def size(self, key: str) -> int | None:
        """The blob's size in bytes; None if there is none."""

    @abc.abstractmethod
    def list(self, prefix: str) -> AsyncIterator[StoredKey]:
        """Every blob whose key starts with `prefix` (for the orphan sweep)."""

    async def close(self) -> None:  # noqa: B027 - most backends hold nothing to release
        """Releases what the backend holds."""

    async def purge_incomplete(self, older_than: timedelta) -> int:
        """Removes what puts that died half-way left behind; returns how many. Nothing by
        default: S3 keeps an unfinished multipart upload invisible (a bucket lifecycle rule
        on incomplete multipart uploads reclaims its space)."""
        del older_than
        return 0

    async def exists(self, key: str) -> bool:
        return await self.size(key) is not None

    async def get(self, key: str) -> bytes:
        return await (await self.open(key)).read()


def check_key(key: str) -> str:
    if not _KEY.match(key) or ".." in key:
        raise ValueError(f"not a blob key: {key!r}")
    return key


_HASH_IN_THREAD_BYTES = 256 * 1024


class Measured:
    """Counts and hashes the chunks of a put as they pass, enforcing its byte limit."""

    def __init__(self, max_bytes: int | None) -> None:
        self.size = 0
        self._max = max_bytes
        self._digest = hashlib.sha256()

    def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self._max is not None and self.size > self._max:
            raise BlobTooLarge(self._max)
        self._digest.update(chunk)

    async def add_off_loop(self, chunk: bytes) -> None:
        """`add`, in a thread for a large chunk: hashing 1 MiB takes ~2 ms (hashlib lets go of
        the GIL meanwhile), a thread hop ~0.1 ms, so only small chunks are hashed in place."""
        if len(chunk) >= _HASH_IN_THREAD_BYTES:
            await asyncio.to_thread(self.add, chunk)
        else:
            self.add(chunk)

    def info(self) -> BlobInfo:
        return BlobInfo(self.size, self._digest.hexdigest())


async def as_chunks(data: bytes | Chunks) -> AsyncIterator[bytes]:
    if isinstance(data, bytes | bytearray | memoryview):
        yield bytes(data)
        return
    async for chunk in data:
        if chunk:
            yield chunk
