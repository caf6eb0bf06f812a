"""The one error a source fetch raises: a stable code, a message for people, and whether to retry."""

from __future__ import annotations

from enum import StrEnum

from common.sizes import describe_size


class SourceErrorCode(StrEnum):
    BLOCKED = "SOURCE_BLOCKED"
    NOT_FOUND = "SOURCE_NOT_FOUND"
    HTTP_ERROR = "SOURCE_HTTP_ERROR"
    TOO_LARGE = "SOURCE_TOO_LARGE"
    UNREACHABLE = "SOURCE_UNREACHABLE"
    TIMEOUT = "SOURCE_TIMEOUT"
    TOO_MANY_REDIRECTS = "TOO_MANY_REDIRECTS"
    INVALID_URL = "SOURCE_INVALID_URL"


_RETRYABLE = frozenset({SourceErrorCode.UNREACHABLE, SourceErrorCode.TIMEOUT})


class SourceError(Exception):
    """A fetch that failed; `code` is recorded on the task, `message` is shown to its owner."""

    def __init__(self, code: SourceErrorCode | str, message: str, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.code = SourceErrorCode(code)
        self.message = message
        # Only HTTP errors decide per status; every other code has one answer.
        self.retryable = self.code in _RETRYABLE if retryable is None else retryable

    def __repr__(self) -> str:
        return f"SourceError({self.code.value!r}, {self.message!r}, retryable={self.retryable})"


def too_large(limit: int) -> SourceError:
    return SourceError(SourceErrorCode.TOO_LARGE, f"the source is larger than the {describe_size(limit)} limit")
