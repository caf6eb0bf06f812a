"""The one exception image processing raises, with a FailureCode (tasks.failures: the proto's
list) recorded on the failed task. The image's codes: UNSUPPORTED_IMAGE (not a decoder we accept),
CORRUPT_IMAGE, IMAGE_TOO_LARGE (over the pixel or frame limit, from the header),
OUTPUT_TOO_LARGE, INVALID_OPERATION (a crop box outside the image)."""

from __future__ import annotations

from tasks.failures import FailureCode


class ImageError(Exception):
    """A failure caused by the input, never worth retrying; the message is for people."""

    def __init__(self, code: FailureCode, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    def __reduce__(self) -> tuple[type[ImageError], tuple[FailureCode, str]]:
        # Raised in a process-pool worker and re-raised in the parent: it must survive pickling.
        return (ImageError, (self.code, self.message))

    retryable = False
