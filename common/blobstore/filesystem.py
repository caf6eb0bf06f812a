"""Blobs as files under one directory: the backend for a single machine.

A put streams into a temporary file beside the blobs (same filesystem), fsyncs it and renames
it into place, then fsyncs the directory: a crash leaves either the whole blob or no blob,
never half of one, and a concurrent reader of the key sees the old blob or the new one. Keys
carry their own shard (common.blobstore.keys), so no directory grows past a few hundred
entries per shard level.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import BinaryIO

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

PARTIAL_DIR = ".partial"


class _FileBlob(Blob):
    def __init__(self, handle: BinaryIO, size: int) -> None:
        self._handle = handle
        self.size = size

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(self._handle.read, READ_CHUNK_BYTES):
                yield chunk
        finally:
            self._handle.close()

    async def read(self) -> bytes:
        try:
            return await asyncio.to_thread(self._handle.read)
        finally:
            self._handle.close()


def _walk(root: Path, prefix: str) -> list[StoredKey]:
    found: list[StoredKey] = []
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [d for d in subdirectories if d != PARTIAL_DIR]
        for name in files:
            path = Path(directory, name)
            key = path.relative_to(root).as_posix()
            if key.startswith(prefix):
                with contextlib.suppress(FileNotFoundError):  # deleted while we walked
                    found.append(StoredKey(key, datetime.fromtimestamp(path.stat().st_mtime, tz=UTC)))
    return found


class FilesystemBlobStore(BlobStore):
    def __init__(self, root: Path, *, fsync: bool = True) -> None:
        self.root = root.resolve()
        self._partial = self.root / PARTIAL_DIR
        self._partial.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    async def put(self, key: str, data: bytes | Chunks, *, max_bytes: int | None = None) -> BlobInfo:
        target = self.path(key)
        if isinstance(data, bytes):  # a result: the whole write in one thread hop, not four
            return await asyncio.to_thread(self._put_bytes, target, data, max_bytes)
        temporary = self._partial / f"{uuid.uuid4().hex}.part"
        measured = Measured(max_bytes)
        handle = await asyncio.to_thread(temporary.open, "wb")
        try:
            try:
                async for chunk in as_chunks(data):
                    # Hashed and written in one thread hop: neither blocks the event loop.
                    await asyncio.to_thread(_hash_and_write, measured, handle, chunk)
                await asyncio.to_thread(self._flush, handle)
            finally:
                handle.close()
            await asyncio.to_thread(self._install, temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return measured.info()

    def _put_bytes(self, target: Path, data: bytes, max_bytes: int | None) -> BlobInfo:
        measured = Measured(max_bytes)
        measured.add(data)  # over the limit: nothing is written
        temporary = self._partial / f"{uuid.uuid4().hex}.part"
        try:
            with temporary.open("wb") as handle:
                handle.write(data)
                self._flush(handle)
            self._install(temporary, target)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return measured.info()

    def _flush(self, handle: BinaryIO) -> None:
        handle.flush()
        if self._fsync:
            os.fsync(handle.fileno())

    def _install(self, temporary: Path, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.replace(target)
        if self._fsync:  # the rename itself must survive a power cut
            directory = os.open(target.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

    async def open(self, key: str) -> Blob:
        path = self.path(key)
        try:
            handle = await asyncio.to_thread(path.open, "rb")
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise BlobNotFound(key) from exc
        return _FileBlob(handle, os.fstat(handle.fileno()).st_size)

    async def delete(self, key: str) -> None:
        await asyncio.to_thread(self._delete, self.path(key))

    def _delete(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        # Drop directories the delete emptied (a task's folder), never the root.
        parent = path.parent
        while parent != self.root and parent.is_relative_to(self.root):
            try:
                parent.rmdir()
            except OSError:
                break  # not empty (or already gone)
            parent = parent.parent

    async def size(self, key: str) -> int | None:
        try:
            return (await asyncio.to_thread(self.path(key).stat)).st_size
        except (FileNotFoundError, NotADirectoryError):
            return None

    async def list(self, prefix: str) -> AsyncIterator[StoredKey]:
        for found in await asyncio.to_thread(_walk, self.root, prefix):
            yield found

    async def purge_incomplete(self, older_than: timedelta) -> int:
        """Removes temporary files of puts that died with their process."""

        def purge() -> int:
            cutoff, removed = time.time() - older_than.total_seconds(), 0
            for path in self._partial.iterdir():
                with contextlib.suppress(FileNotFoundError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()
                        removed += 1
            return removed

        return await asyncio.to_thread(purge)


def _hash_and_write(measured: Measured, handle: BinaryIO, chunk: bytes) -> None:
    measured.add(chunk)  # first: over the limit, nothing more is written
    handle.write(chunk)
