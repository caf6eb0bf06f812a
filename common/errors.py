"""Domain errors that carry their gRPC status and a message meant for the caller.

Services raise these and never touch gRPC; one interceptor (common.interceptors) turns them
into statuses. Anything else that escapes a handler becomes INTERNAL with a generic message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2


class ServiceError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def details(self) -> list[any_pb2.Any]:
        """Rich error details (google.rpc.*) sent in grpc-status-details-bin."""
        return []

    def to_status(self) -> status_pb2.Status:
        return status_pb2.Status(code=self.code.value[0], message=self.message, details=self.details())


class InvalidArgument(ServiceError):
    """A bad request, with a `google.rpc.BadRequest` field violation per broken rule: the field's
    path, what to do about it, and (for the rules proto/ declares) the rule's id as `reason`."""

    code = grpc.StatusCode.INVALID_ARGUMENT

    def __init__(self, message: str, *, field: str | None = None, rule: str = "") -> None:
        """`rule` names the rule broken, as protovalidate's ids do (`source_url.scheme`): the
        checks only the code can make (common.validation says which) name theirs too."""
        super().__init__(message)
        self.field = field
        self.violations: list[tuple[str, str, str]] = [(field, message, rule)] if field is not None else []

    @classmethod
    def of(cls, violations: list[tuple[str, str, str]]) -> InvalidArgument:
        """One error for several (field, description, rule id) violations; its message names
        the first ("operations[0].resize.width: must be ...") and counts the rest."""
        field, description, _ = violations[0]
        message = f"{field}: {description}" if field else description
        if len(violations) > 1:
            message += f" (and {len(violations) - 1} more: see the field violations)"
        error = cls(message, field=field)
        error.violations = list(violations)
        return error

    def details(self) -> list[any_pb2.Any]:
        if not self.violations:
            return []
        packed = any_pb2.Any()
        packed.Pack(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(field=field, description=description, reason=reason)
                    for field, description, reason in self.violations
                ]
            )
        )
        return [packed]


class Unauthenticated(ServiceError):
    code = grpc.StatusCode.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    code = grpc.StatusCode.PERMISSION_DENIED


class NotFound(ServiceError):
    code = grpc.StatusCode.NOT_FOUND


class AlreadyExists(ServiceError):
    code = grpc.StatusCode.ALREADY_EXISTS


class FailedPrecondition(ServiceError):
    code = grpc.StatusCode.FAILED_PRECONDITION


@dataclass(frozen=True)
class QuotaViolation:
    """One quota a call would pass: whose (`user:<id>`), what it says with the numbers, and
    which (its id, the limit's name, and its value)."""

    subject: str
    description: str
    quota_id: str = ""
    quota_value: int | None = None


class ResourceExhausted(ServiceError):
    """Throttled or over a limit: a `google.rpc.RetryInfo` when waiting helps, and a
    `google.rpc.QuotaFailure` violation (subject, description) per quota the call would pass."""

    code = grpc.StatusCode.RESOURCE_EXHAUSTED

    def __init__(
        self,
        message: str,
        *,
        retry_after_seconds: int | None = None,
        quota_violations: Sequence[QuotaViolation] = (),
    ) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds
        self.quota_violations = list(quota_violations)

    def details(self) -> list[any_pb2.Any]:
        details: list[any_pb2.Any] = []
        if self.quota_violations:
            packed = any_pb2.Any()
            packed.Pack(
                error_details_pb2.QuotaFailure(
                    violations=[
                        error_details_pb2.QuotaFailure.Violation(
                            subject=v.subject, description=v.description, quota_id=v.quota_id, quota_value=v.quota_value
                        )
                        for v in self.quota_violations
                    ]
                )
            )
            details.append(packed)
        if self.retry_after_seconds is not None:
            packed = any_pb2.Any()
            packed.Pack(
                error_details_pb2.RetryInfo(retry_delay=duration_pb2.Duration(seconds=self.retry_after_seconds))
            )
            details.append(packed)
        return details


class Unavailable(ServiceError):
    code = grpc.StatusCode.UNAVAILABLE
