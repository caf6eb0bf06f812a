"""Image bytes live here, never in the task store or in Kafka: a small interface with a
filesystem backend (one machine) and an S3 backend (several machines), chosen by a setting.

Task documents hold only keys (see :mod:`common.blobstore.keys`). Every backend writes a blob
whole or not at all: a reader never sees half a blob, and a failed or refused put leaves
nothing behind that a reader can see.
"""

from common.blobstore.base import (
    Blob,
    BlobInfo,
    BlobNotFound,
    BlobStore,
    BlobTooLarge,
    Chunks,
    StoredKey,
)
from common.blobstore.factory import open_blob_store

__all__ = [
    "Blob",
    "BlobInfo",
    "BlobNotFound",
    "BlobStore",
    "BlobTooLarge",
    "Chunks",
    "StoredKey",
    "open_blob_store",
]
