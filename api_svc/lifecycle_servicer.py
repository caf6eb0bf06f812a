"""TaskLifecycleService: worker_svc's way through a task's life, served by the task's owner.
proto ⇄ tasks.lifecycle.TaskClaims, on api_svc's own collections; the store being unreachable
is UNAVAILABLE (the worker waits it out and asks again)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, timedelta
from typing import Any

import grpc
from bson.errors import BSONError
from pixelflow.internal.v1 import lifecycle_pb2, lifecycle_pb2_grpc

from api_svc.repository import TaskRepository, store_errors
from common.errors import InvalidArgument
from tasks.lifecycle import Claim, ClaimOutcome, TaskClaims
from tasks.model import from_bson, to_bson

Context = grpc.aio.ServicerContext[Any, Any]

_OUTCOMES = {outcome: lifecycle_pb2.ClaimOutcome.Value(f"CLAIM_OUTCOME_{outcome.name}") for outcome in ClaimOutcome}


def _held(held: lifecycle_pb2.HeldAttempt) -> Claim:
    """The attempt a worker says it holds; every transition checks that against the locks.
    The callback URL is the one the claim gave it: its outcome owes a webhook event."""
    return Claim(
        ClaimOutcome.CLAIMED, {"_id": held.task_id, "attempts": held.attempt, "callback_url": held.callback_url}
    )


def _claimed(claim: Claim) -> lifecycle_pb2.ClaimTaskResponse:
    return lifecycle_pb2.ClaimTaskResponse(
        outcome=_OUTCOMES[claim.outcome],
        task=b"" if claim.task is None else to_bson(claim.task),
        own_outcome=claim.own_outcome,
    )


def _result(data: bytes) -> dict[str, Any]:
    try:
        return from_bson(data)
    except BSONError as exc:
        raise InvalidArgument("result must be a BSON document", field="result", rule="result.bson") from exc


class TaskLifecycleServicer(lifecycle_pb2_grpc.TaskLifecycleServiceServicer):
    def __init__(self, repository: TaskRepository, ended: Callable[[], None] = lambda: None) -> None:
        self._repository = repository
        # Wakes the webhook dispatcher after an outcome was committed (a finish, an exhausted claim).
        self._ended = ended

    def _claims(self, claimant: lifecycle_pb2.Claimant) -> TaskClaims:
        lease = timedelta(seconds=claimant.lease_seconds)
        return self._repository.claims(claimant.worker_id, lease, claimant.max_attempts)

    async def ClaimTask(
        self, request: lifecycle_pb2.ClaimTaskRequest, context: Context
    ) -> lifecycle_pb2.ClaimTaskResponse:
        async with store_errors():
            return _claimed(await self._claims(request.claimant).claim(request.task_id))

    async def RetryTask(
        self, request: lifecycle_pb2.RetryTaskRequest, context: Context
    ) -> lifecycle_pb2.ClaimTaskResponse:
        async with store_errors():
            claim = await self._claims(request.held.claimant).retrying(_held(request.held))
        return _claimed(claim)

    async def RenewLease(
        self, request: lifecycle_pb2.RenewLeaseRequest, context: Context
    ) -> lifecycle_pb2.RenewLeaseResponse:
        async with store_errors():
            renewed = await self._claims(request.held.claimant).renew(_held(request.held))
        return lifecycle_pb2.RenewLeaseResponse(renewed=renewed)

    async def FinishTask(
        self, request: lifecycle_pb2.FinishTaskRequest, context: Context
    ) -> lifecycle_pb2.FinishTaskResponse:
        claims = self._claims(request.held.claimant)
        held = _held(request.held)
        async with store_errors():
            if request.WhichOneof("outcome") == "result":
                written = await claims.complete(held, _result(request.result))
            else:
                failure = request.failure
                attempts = failure.attempts if failure.HasField("attempts") else None
                written = await claims.fail(
                    held, failure.code, failure.message, retryable=failure.retryable, attempts=attempts
                )
        if written is None:
            return lifecycle_pb2.FinishTaskResponse(recorded=False)
        self._ended()
        return lifecycle_pb2.FinishTaskResponse(recorded=True, written=to_bson(written))

    async def HandBackTask(
        self, request: lifecycle_pb2.HandBackTaskRequest, context: Context
    ) -> lifecycle_pb2.HandBackTaskResponse:
        async with store_errors():
            handed_back = await self._claims(request.held.claimant).hand_back(_held(request.held))
        return lifecycle_pb2.HandBackTaskResponse(handed_back=handed_back)

    async def CountTasks(
        self, request: lifecycle_pb2.CountTasksRequest, context: Context
    ) -> lifecycle_pb2.CountTasksResponse:
        counts = await self._repository.queue_counts(request.finished_since.ToDatetime(tzinfo=UTC))
        return lifecycle_pb2.CountTasksResponse(**counts)
