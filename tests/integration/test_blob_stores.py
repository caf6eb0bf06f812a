"""The BlobStore contract, run against each backend: the filesystem one and S3 on a real
SeaweedFS. Both must behave the same for everything the pipeline relies on."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from obstore.exceptions import PermissionDeniedError

from common.blobstore import BlobNotFound, BlobStore, BlobTooLarge
from common.blobstore.filesystem import PARTIAL_DIR, FilesystemBlobStore
from common.blobstore.s3 import PART_BYTES, S3BlobStore
from infra.infrastructure import make_temp_root
from infra.seaweedfs import BUCKET, SeaweedFSPorts, SeaweedFSServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def seaweedfs() -> Iterator[SeaweedFSServer]:
    root = make_temp_root("pixelflow-seaweedfs-")
    server = SeaweedFSServer(root, SeaweedFSPorts.free())
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(params=["filesystem", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "filesystem":
        return FilesystemBlobStore(tmp_path / "blobs")
    server: SeaweedFSServer = request.getfixturevalue("seaweedfs")
    return server.blob_store()


def _key(name: str = "blob") -> str:
    unique = uuid.uuid4().hex
    return f"tests/{unique[:2]}/{unique}/{name}"


async def _chunks(data: bytes, size: int = 256 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_bytes_round_trip_with_size_and_hash(blobs: BlobStore) -> None:
    key = _key()
    info = await blobs.put(key, b"hello blob")
    assert (info.size, info.sha256) == (10, hashlib.sha256(b"hello blob").hexdigest())
    assert await blobs.get(key) == b"hello blob"
    assert await blobs.size(key) == 10 and await blobs.exists(key)


async def test_large_blob_streams_in_and_out_in_bounded_chunks(blobs: BlobStore) -> None:
    data = os.urandom(2 * PART_BYTES + 12345)  # several multipart parts on S3
    key = _key()
    info = await blobs.put(key, _chunks(data))
    assert info.size == len(data) and info.sha256 == hashlib.sha256(data).hexdigest()
    blob = await blobs.open(key)
    assert blob.size == len(data)
    received = [chunk async for chunk in blob.chunks()]
    assert b"".join(received) == data
    assert len(received) > 1 and max(map(len, received)) <= 16 * 1024 * 1024


async def test_missing_blobs(blobs: BlobStore) -> None:
    key = _key()
    with pytest.raises(BlobNotFound):
        await blobs.open(key)
    assert await blobs.size(key) is None and not await blobs.exists(key)
    await blobs.delete(key)  # idempotent


async def test_delete(blobs: BlobStore) -> None:
    key = _key()
    await blobs.put(key, b"x")
    await blobs.delete(key)
    await blobs.delete(key)
    assert not await blobs.exists(key)


@pytest.mark.parametrize("size", [1000, 2 * PART_BYTES])
async def test_past_the_limit_nothing_is_stored(blobs: BlobStore, size: int) -> None:
    key = _key()
    with pytest.raises(BlobTooLarge):
        await blobs.put(key, _chunks(os.urandom(size)), max_bytes=size - 1)
    assert not await blobs.exists(key)
    _assert_no_partial_files(blobs)


@pytest.mark.parametrize("size", [1000, 2 * PART_BYTES])
async def test_a_stream_that_breaks_off_stores_nothing(blobs: BlobStore, size: int) -> None:
    """A truncated upload: the chunk source fails part-way (the client went away)."""

    async def broken() -> AsyncIterator[bytes]:
        async for chunk in _chunks(os.urandom(size)):
            yield chunk
        raise ConnectionResetError("the client went away")

    key = _key()
    with pytest.raises(ConnectionResetError):
        await blobs.put(key, broken())
    assert not await blobs.exists(key)
    _assert_no_partial_files(blobs)


async def test_a_replaced_blob_is_never_seen_half_written(blobs: BlobStore) -> None:
    key = _key()
    versions = [bytes([i]) * (PART_BYTES + 1000 * i) for i in range(1, 5)]
    await blobs.put(key, versions[0])

    async def read_while_writing() -> set[bytes]:
        seen = set()
        for _ in range(20):
            seen.add(await blobs.get(key))  # each get awaits I/O: the puts run in between
        return seen

    results = await asyncio.gather(*(blobs.put(key, _chunks(v)) for v in versions), read_while_writing())
    seen = results[-1]
    assert isinstance(seen, set) and seen <= set(versions)  # every read is one whole version
    assert await blobs.get(key) in versions


async def test_concurrent_writers_of_different_keys(blobs: BlobStore) -> None:
    payloads = {_key(): os.urandom(50_000 + i) for i in range(16)}
    await asyncio.gather(*(blobs.put(k, _chunks(v, 4096)) for k, v in payloads.items()))
    for key, value in payloads.items():
        assert await blobs.get(key) == value


async def test_list_by_prefix(blobs: BlobStore) -> None:
    folder = _key("")
    keys = {folder + name for name in ("a", "b", "c")}
    for key in keys:
        await blobs.put(key, b"x")
    listed = [stored async for stored in blobs.list(folder)]
    assert {stored.key for stored in listed} == keys
    assert all(stored.modified.tzinfo is not None for stored in listed)


@pytest.mark.parametrize("key", ["../escape", "/absolute", "a//b", "UPPER/case", "a/../b", ""])
async def test_keys_outside_the_layout_are_refused(blobs: BlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="not a blob key"):
        await blobs.put(key, b"x")


async def test_unsigned_and_wrongly_signed_requests_are_refused(seaweedfs: SeaweedFSServer) -> None:
    """The test server checks signatures as a deployed S3 does (so the tests prove ours)."""
    for key_id, secret in (("", ""), (seaweedfs.access_key_id, "not-the-secret")):
        intruder = S3BlobStore(
            bucket=BUCKET,
            endpoint_url=seaweedfs.endpoint_url,
            region="us-east-1",
            access_key_id=key_id,
            secret_access_key=secret,
        )
        with pytest.raises(PermissionDeniedError):
            await intruder.put(_key(), b"x")


def _assert_no_partial_files(blobs: BlobStore) -> None:
    if isinstance(blobs, FilesystemBlobStore):
        assert not list((blobs.root / PARTIAL_DIR).iterdir())
