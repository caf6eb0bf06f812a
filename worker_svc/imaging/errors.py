"""The one exception image processing raises, with stable codes recorded on a failed task."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    # Not one of the decoders we accept (SVG, PDF, PSD, HEIC, text, empty input, ...).
    UNSUPPORTED_IMAGE = "UNSUPPORTED_IMAGE"
    # An accepted format whose bytes cannot be decoded (truncated, damaged).
    CORRUPT_IMAGE = "CORRUPT_IMAGE"
    # Over the pixel or frame limit, judged from the header before decoding.
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    # The operations would produce an image over the output limits.
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"
    # An operation that cannot apply to this image (a crop box outside it).
    INVALID_OPERATION = "INVALID_OPERATION"


class ImageError(Exception):
    """A failure caused by the input, never worth retrying; the message is for people."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[ImageError], tuple[ErrorCode, str]]:
        # Raised in a process-pool worker and re-raised in the parent: it must survive pickling.
        return (ImageError, (self.code, self.message))

    retryable = False
