"""The one error a source fetch raises: a stable code, a message for people, and whether to retry."""

from __future__ import annotations

from tasks.failures import FailureCode
from worker_svc.sizes import describe_size

_RETRYABLE = frozenset({FailureCode.SOURCE_UNREACHABLE, FailureCode.SOURCE_TIMEOUT})


class SourceError(Exception):
    """A fetch that failed; `code` is recorded on the task, `message` is shown to its owner."""

    def __init__(self, code: FailureCode | str, message: str, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.code = FailureCode(code)
        self.message = message
        # Only HTTP errors decide per status; every other code has one answer.
        self.retryable = self.code in _RETRYABLE if retryable is None else retryable

    def __repr__(self) -> str:
        return f"SourceError({self.code.value!r}, {self.message!r}, retryable={self.retryable})"


def too_large(limit: int) -> SourceError:
    return SourceError(FailureCode.SOURCE_TOO_LARGE, f"the source is larger than the {describe_size(limit)} limit")
