"""What the bytes are, against the allowlist of decoders (tasks.image_types)."""

from __future__ import annotations

from tasks.failures import FailureCode
from tasks.image_types import SourceFormat, detect_format
from worker_svc.imaging.errors import ImageError

__all__ = ["SourceFormat", "sniff"]


def sniff(data: bytes) -> SourceFormat:
    detected = detect_format(data)
    if detected is None:
        what = "empty input" if not data else "not an image format we accept"
        raise ImageError(FailureCode.UNSUPPORTED_IMAGE, f"{what}: send JPEG, PNG, WebP, GIF, TIFF, BMP or AVIF")
    return detected
