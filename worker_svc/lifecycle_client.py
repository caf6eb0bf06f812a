"""The worker's side of a task's lifecycle, asked of its owner: api_svc's TaskLifecycleService.
The same calls as tasks.lifecycle.TaskClaims (claim, retrying, renew, complete, fail,
hand_back), so the processor reads the same either way, and the queue's counts: the worker
reads and writes no task store itself."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.internal.v1 import lifecycle_pb2, lifecycle_pb2_grpc

from common.internal_auth import internal_metadata
from tasks.lifecycle import Claim, ClaimOutcome
from tasks.model import from_bson, to_bson

Document = dict[str, Any]

# Longer than a claim's few store commands can take under the store's own timeouts (10 s).
CALL_TIMEOUT_SECONDS = 30.0

_OUTCOMES = {lifecycle_pb2.ClaimOutcome.Value(f"CLAIM_OUTCOME_{outcome.name}"): outcome for outcome in ClaimOutcome}


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    processing: int
    completed_since: int
    failed_since: int


class LifecycleUnavailable(Exception):
    """api_svc did not answer, or refused (it is restarting, its store is down, or the internal
    secret does not match): the worker waits it out (worker_svc.retry) instead of deciding
    anything about the task."""


class LifecycleClient:
    def __init__(
        self, channel: grpc.aio.Channel, secret: str, worker_id: str, lease: timedelta, max_attempts: int
    ) -> None:
        self._stub = lifecycle_pb2_grpc.TaskLifecycleServiceStub(channel)
        self._metadata = internal_metadata(secret)
        self._claimant = lifecycle_pb2.Claimant(
            worker_id=worker_id, lease_seconds=lease.total_seconds(), max_attempts=max_attempts
        )

    async def _call(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, metadata=self._metadata, timeout=CALL_TIMEOUT_SECONDS)
        except grpc.aio.AioRpcError as exc:
            raise LifecycleUnavailable(f"{exc.code().name}: {exc.details()}") from exc

    def _held(self, claim: Claim) -> lifecycle_pb2.HeldAttempt:
        assert claim.task is not None
        return lifecycle_pb2.HeldAttempt(task_id=claim.task["_id"], claimant=self._claimant, attempt=claim.attempt)

    @staticmethod
    def _claim(reply: lifecycle_pb2.ClaimTaskResponse, held: Document | None = None) -> Claim:
        task = from_bson(reply.task) if reply.task else None
        if task is not None and held is not None:
            task = {**held, **task}  # RetryTask answers only the fields it wrote
        return Claim(_OUTCOMES[reply.outcome], task)

    async def claim(self, task_id: str) -> Claim:
        request = lifecycle_pb2.ClaimTaskRequest(task_id=task_id, claimant=self._claimant)
        return self._claim(await self._call(self._stub.ClaimTask, request))

    async def retrying(self, claim: Claim) -> Claim:
        assert claim.task is not None
        request = lifecycle_pb2.RetryTaskRequest(held=self._held(claim))
        return self._claim(await self._call(self._stub.RetryTask, request), held=claim.task)

    async def renew(self, claim: Claim) -> bool:
        request = lifecycle_pb2.RenewLeaseRequest(held=self._held(claim))
        return bool((await self._call(self._stub.RenewLease, request)).renewed)

    async def complete(self, claim: Claim, result: Document) -> Document | None:
        return await self._finish(claim, result=to_bson(result))

    async def fail(
        self, claim: Claim, code: str, message: str, *, retryable: bool, attempts: int | None = None
    ) -> Document | None:
        failure = lifecycle_pb2.Failure(code=code, message=message, retryable=retryable, attempts=attempts)
        return await self._finish(claim, failure=failure)

    async def _finish(self, claim: Claim, **outcome: Any) -> Document | None:
        request = lifecycle_pb2.FinishTaskRequest(held=self._held(claim), **outcome)
        reply = await self._call(self._stub.FinishTask, request)
        return from_bson(reply.written) if reply.recorded else None

    async def hand_back(self, claim: Claim) -> bool:
        request = lifecycle_pb2.HandBackTaskRequest(held=self._held(claim))
        return bool((await self._call(self._stub.HandBackTask, request)).handed_back)

    async def queue_counts(self, finished_since: datetime) -> QueueCounts:
        """How many tasks wait, run, and completed or failed since `finished_since`."""
        stamp = Timestamp()
        stamp.FromDatetime(finished_since)
        reply = await self._call(self._stub.CountTasks, lifecycle_pb2.CountTasksRequest(finished_since=stamp))
        return QueueCounts(reply.pending, reply.processing, reply.completed_since, reply.failed_since)
