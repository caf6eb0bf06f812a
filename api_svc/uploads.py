"""Uploads: raw image bytes streamed into the blob store, sniffed and measured on the way, and
the sources of tasks created from them. No gRPC here."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

from pixelflow.v1 import task_pb2

from api_svc.ids import checked_id, new_id
from api_svc.repository import Document, TaskRepository
from common.blobstore import BlobStore, BlobTooLarge
from common.blobstore.keys import inline_source_key, upload_key
from common.errors import InvalidArgument, NotFound
from tasks.image_types import CONTENT_TYPES, detect_format
from tasks.model import utcnow
from tasks.operations import Watermark, parse_operations

if TYPE_CHECKING:
    from api_svc.quotas import Quotas

log = logging.getLogger(__name__)

MAX_FILENAME_LENGTH = 255
# Enough of the stream to recognise every supported format (AVIF's ftyp box is the longest).
SNIFF_BYTES = 4096
_NOT_AN_IMAGE = "the upload is not an image in a supported format (JPEG, PNG, WebP, GIF, TIFF, BMP or AVIF)"


def checked_filename(filename: str, field: str) -> str:
    filename = filename.strip()
    if len(filename) > MAX_FILENAME_LENGTH or not filename.isprintable():
        raise InvalidArgument(
            f"{field} must be printable, at most {MAX_FILENAME_LENGTH} characters",
            field=field,
            rule=f"{field}.printable",
        )
    return filename


def _too_large(limit: int, field: str) -> InvalidArgument:
    return InvalidArgument(
        f"the upload is larger than the limit of {limit} bytes; nothing was stored",
        field=field,
        rule=f"{field}.max_bytes",
    )


class Uploads:
    def __init__(
        self,
        repository: TaskRepository,
        blobs: BlobStore,
        max_bytes: int,
        max_inline_bytes: int,
        *,
        quotas: Quotas | None = None,
    ) -> None:
        self._repository = repository
        self._blobs = blobs
        self._max_bytes = max_bytes
        self._max_inline_bytes = max_inline_bytes
        self._quotas = quotas

    async def create(self, owner_id: str, filename: str, chunks: AsyncIterator[bytes]) -> Document:
        """Streams `chunks` into the blob store. Nothing is stored (blob or record) if the
        bytes are not an image, pass the limit, or stop coming (the caller went away)."""
        filename = checked_filename(filename, "filename")
        head, chunks = await _peek(chunks, SNIFF_BYTES)
        if not head:
            raise InvalidArgument(
                "the upload is empty; send the image's bytes as the body", field="body", rule="body.required"
            )
        kind = detect_format(head)
        if kind is None:
            raise InvalidArgument(_NOT_AN_IMAGE, field="body", rule="body.image")
        # The user's quotas (their largest upload, the storage they have left) may bound it
        # below the service's own limit; passing those is RESOURCE_EXHAUSTED, not a bad request.
        bound, quota = self._max_bytes, ""
        if self._quotas is not None:
            allowed, name = await self._quotas.upload_bound(owner_id)
            if allowed < bound:
                bound, quota = allowed, name
            if bound <= 0:
                raise await self._quotas.upload_refused(owner_id, quota, bound)
        upload_id = new_id()
        key = upload_key(upload_id)
        try:
            info = await self._blobs.put(key, chunks, max_bytes=bound)
        except BlobTooLarge as exc:
            if quota and self._quotas is not None:
                raise await self._quotas.upload_refused(owner_id, quota, bound) from exc
            raise _too_large(self._max_bytes, "body") from exc
        document: Document = {
            "_id": upload_id,
            "owner_id": owner_id,
            "filename": filename,
            "content_type": CONTENT_TYPES[kind],
            "size_bytes": info.size,
            "sha256": info.sha256,
            "blob_key": key,
            "created_at": utcnow(),
        }
        try:
            await self._repository.insert_upload(document)
        except BaseException:
            await self._blobs.delete(key)
            raise
        log.info("upload stored", extra={"upload_id": upload_id, "size_bytes": info.size})
        return document

    async def source_from_upload(self, owner_id: str, upload_id: str) -> Document:
        """The task source for an earlier upload of this user."""
        upload = await self._repository.get_upload(owner_id, checked_id(upload_id, "upload_id"))
        if upload is None:
            raise NotFound(f"no upload {upload_id}")
        fields = ("filename", "content_type", "size_bytes", "sha256", "blob_key")
        return {"upload": {"upload_id": upload_id, **{name: upload[name] for name in fields}}}

    async def check_watermark(self, owner_id: str, upload_id: str, field: str) -> None:
        """A watermark names one of this user's uploads (another user's is as absent as none)."""
        if await self._repository.get_upload(owner_id, upload_id) is None:
            raise NotFound(f"no upload {upload_id} to use as a watermark ({field})")

    async def check_operations(
        self, owner_id: str, operations: Sequence[task_pb2.Operation], path: str = "operations"
    ) -> None:
        """What only the service can check of a pipeline the proto's rules passed (each
        operation is checked by them again, tasks.operations): every watermark is one of this
        user's uploads. CreateTask (its operations and each variant's, at `path`) and a preset
        being saved go through here alike."""
        for index, op in enumerate(parse_operations(operations, path)):
            if isinstance(op, Watermark):
                await self.check_watermark(owner_id, op.upload_id, f"{path}[{index}].watermark.upload_id")

    def inline_source(self, content: bytes, filename: str) -> Document:
        """Checks an upload sent inside CreateTask; the bytes are stored by `store_inline`."""
        if not content:
            raise InvalidArgument("upload.content is empty", field="upload.content", rule="upload.content.required")
        if len(content) > self._max_inline_bytes:
            raise InvalidArgument(
                f"the upload is {len(content)} bytes; the limit for an inline upload is {self._max_inline_bytes} "
                "bytes (send larger images with CreateUpload, POST /v1/uploads)",
                field="upload.content",
                rule="upload.content.max_bytes",
            )
        kind = detect_format(content)
        if kind is None:
            raise InvalidArgument(_NOT_AN_IMAGE, field="upload.content", rule="upload.content.image")
        filename = checked_filename(filename, "upload.filename")
        return {"upload": {"filename": filename, "content_type": CONTENT_TYPES[kind], "size_bytes": len(content)}}

    async def store_inline(self, task_id: str, source: Document, content: bytes) -> None:
        key = inline_source_key(task_id)
        info = await self._blobs.put(key, content)
        source["upload"] |= {"blob_key": key, "sha256": info.sha256}


async def _peek(chunks: AsyncIterator[bytes], at_least: int) -> tuple[bytes, AsyncIterator[bytes]]:
    """The first `at_least` bytes (fewer if the stream is shorter) and the whole stream again."""
    head: list[bytes] = []
    size = 0
    async for chunk in chunks:
        head.append(chunk)
        size += len(chunk)
        if size >= at_least:
            break

    async def replay() -> AsyncIterator[bytes]:
        for chunk in head:
            yield chunk
        async for chunk in chunks:
            yield chunk

    return b"".join(head), replay()
