"""Why a task failed or a message was dead-lettered: proto/'s FailureCode, by the names recorded.

The proto's enum is the list (clients switch on TaskError.failure); this is its Python face,
with the names the task documents and dead letters record (the enum value's name without
FAILURE_CODE_). Checked against the compiled proto when imported, both ways, so the two cannot
drift: a code added to one side only fails every service at start.
"""

from __future__ import annotations

from enum import StrEnum

from pixelflow.v1 import task_pb2

_PREFIX = "FAILURE_CODE_"


class FailureCode(StrEnum):
    SOURCE_BLOCKED = "SOURCE_BLOCKED"
    SOURCE_NOT_FOUND = "SOURCE_NOT_FOUND"
    SOURCE_HTTP_ERROR = "SOURCE_HTTP_ERROR"
    SOURCE_TOO_LARGE = "SOURCE_TOO_LARGE"
    SOURCE_UNREACHABLE = "SOURCE_UNREACHABLE"
    SOURCE_TIMEOUT = "SOURCE_TIMEOUT"
    TOO_MANY_REDIRECTS = "TOO_MANY_REDIRECTS"
    SOURCE_INVALID_URL = "SOURCE_INVALID_URL"
    UNSUPPORTED_IMAGE = "UNSUPPORTED_IMAGE"
    CORRUPT_IMAGE = "CORRUPT_IMAGE"
    IMAGE_TOO_LARGE = "IMAGE_TOO_LARGE"
    OUTPUT_TOO_LARGE = "OUTPUT_TOO_LARGE"
    INVALID_OPERATION = "INVALID_OPERATION"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    PROCESSING_CRASHED = "PROCESSING_CRASHED"
    INTERNAL = "INTERNAL"
    ATTEMPTS_EXHAUSTED = "ATTEMPTS_EXHAUSTED"
    UNKNOWN_TASK = "UNKNOWN_TASK"
    UNDECODABLE_MESSAGE = "UNDECODABLE_MESSAGE"
    UNREADABLE_DEAD_LETTER = "UNREADABLE_DEAD_LETTER"


def to_proto(code: str) -> task_pb2.FailureCode.ValueType:
    """The enum value of a recorded code; UNSPECIFIED for one this build does not know."""
    try:
        return task_pb2.FailureCode.Value(_PREFIX + code)
    except ValueError:
        return task_pb2.FAILURE_CODE_UNSPECIFIED


_IN_PROTO = {name.removeprefix(_PREFIX) for name in task_pb2.FailureCode.keys()} - {"UNSPECIFIED"}  # noqa: SIM118 - protobuf's enum wrapper
if {code.value for code in FailureCode} != _IN_PROTO:  # pragma: no cover - a build that drifted
    raise ImportError(f"tasks.failures and proto's FailureCode differ: {sorted(_IN_PROTO ^ set(FailureCode))}")
