"""The blob store a service's settings ask for."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Protocol

from pydantic import SecretStr

from common.blobstore.base import BlobStore


class BlobStoreSettings(Protocol):
    @property
    def data_dir(self) -> Path: ...
    @property
    def blob_backend(self) -> Literal["filesystem", "s3"]: ...
    @property
    def blob_dir(self) -> Path | None: ...
    @property
    def s3_endpoint_url(self) -> str: ...
    @property
    def s3_bucket(self) -> str: ...
    @property
    def s3_region(self) -> str: ...
    @property
    def s3_access_key_id(self) -> str: ...
    @property
    def s3_secret_access_key(self) -> SecretStr: ...


def open_blob_store(settings: BlobStoreSettings) -> BlobStore:
    if settings.blob_backend == "s3":
        from common.blobstore.s3 import S3BlobStore  # noqa: PLC0415 - obstore loads only when used

        return S3BlobStore(
            bucket=settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=settings.s3_secret_access_key.get_secret_value(),
        )
    from common.blobstore.filesystem import FilesystemBlobStore  # noqa: PLC0415

    return FilesystemBlobStore(settings.blob_dir or settings.data_dir / "blobs")
