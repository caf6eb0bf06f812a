"""What a failed call tells the caller: the gRPC status, the server's message, and the rich
details (google.rpc.*) the server attached, unpacked so nobody parses trailers by hand."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2

_DETAILS_KEY = "grpc-status-details-bin"


@dataclass(frozen=True)
class FieldViolation:
    """A request field that broke a rule: its path (`operations[0].resize.width`), what to do
    about it, and the rule's id (`resize.size_required`) when the contract names one."""

    field: str
    description: str
    rule: str = ""


@dataclass(frozen=True)
class QuotaViolation:
    """A quota the call would pass: whose (`user:<id>`), what it says with the numbers
    (`active_tasks: 5 of 5 tasks are PENDING or PROCESSING; ...`), and which limit (`active_tasks`)
    at what value."""

    subject: str
    description: str
    quota_id: str = ""
    quota_value: int = 0


class PixelFlowError(Exception):
    """A call the service refused or could not answer."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        violations: tuple[FieldViolation, ...] = (),
        retry_after: float | None = None,
        quota_violations: tuple[QuotaViolation, ...] = (),
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.violations = violations
        # The server's QuotaFailure (RESOURCE_EXHAUSTED over a quota): which limits, with the numbers.
        self.quota_violations = quota_violations
        # The server's RetryInfo: how long waiting helps (RESOURCE_EXHAUSTED), when it says.
        self.retry_after = retry_after

    @classmethod
    def from_rpc(cls, error: grpc.aio.AioRpcError) -> PixelFlowError:
        code: grpc.StatusCode = error.code()
        message: str = error.details() or code.name
        violations: list[FieldViolation] = []
        retry_after: float | None = None
        quota_violations: list[QuotaViolation] = []
        trailers: Sequence[tuple[str, str | bytes]] = error.trailing_metadata() or ()  # type: ignore[assignment]
        for key, value in trailers:
            if key != _DETAILS_KEY or not isinstance(value, bytes):
                continue
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                    bad_request = error_details_pb2.BadRequest()
                    detail.Unpack(bad_request)
                    violations.extend(
                        FieldViolation(v.field, v.description, v.reason) for v in bad_request.field_violations
                    )
                elif detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR):
                    failure = error_details_pb2.QuotaFailure()
                    detail.Unpack(failure)
                    quota_violations.extend(
                        QuotaViolation(v.subject, v.description, v.quota_id, v.quota_value) for v in failure.violations
                    )
                elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                    info = error_details_pb2.RetryInfo()
                    detail.Unpack(info)
                    retry_after = info.retry_delay.ToTimedelta().total_seconds()
        return cls(
            code,
            message,
            violations=tuple(violations),
            retry_after=retry_after,
            quota_violations=tuple(quota_violations),
        )


class NotLoggedIn(PixelFlowError):
    """No credentials to call with: neither a token given nor a saved session."""

    def __init__(self, message: str = "not logged in: run `pixelflow login --email EMAIL` first") -> None:
        super().__init__(grpc.StatusCode.UNAUTHENTICATED, message)
