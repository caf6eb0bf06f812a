"""TaskLifecycleService, api_svc's internal API for workers: only callers holding the
deployment's internal secret get in (a user's token does not), the gateway does not route it,
and it keeps the proto's rules like every other API."""

from __future__ import annotations

import uuid

import grpc
import pytest
from pixelflow.internal.v1 import lifecycle_pb2, lifecycle_pb2_grpc
from pixelflow.v1 import auth_pb2_grpc

from common.internal_auth import internal_metadata
from infra.stack import Stack
from tests.conftest import bearer, register_and_login

pytestmark = pytest.mark.integration

CLAIMANT = lifecycle_pb2.Claimant(worker_id="test-worker", lease_seconds=30, max_attempts=3)


def _claim(
    channel: grpc.Channel, metadata: tuple[tuple[str, str], ...], task_id: str
) -> lifecycle_pb2.ClaimTaskResponse:
    stub = lifecycle_pb2_grpc.TaskLifecycleServiceStub(channel)
    request = lifecycle_pb2.ClaimTaskRequest(task_id=task_id, claimant=CLAIMANT)
    reply: lifecycle_pb2.ClaimTaskResponse = stub.ClaimTask(request, metadata=metadata, timeout=10)
    return reply


def test_the_internal_secret_is_required(stack: Stack) -> None:
    with grpc.insecure_channel(stack.address("auth_svc")) as channel:
        token = register_and_login(auth_pb2_grpc.AuthServiceStub(channel)).access_token
    wrong = internal_metadata("x" * len(stack.internal_secret))
    with grpc.insecure_channel(stack.address("api_svc")) as channel:
        for metadata in ((), wrong, bearer(token)):
            with pytest.raises(grpc.RpcError) as refused:
                _claim(channel, metadata, uuid.uuid4().hex)
            assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED, metadata
            assert "PIXELFLOW_INTERNAL_SECRET" in (refused.value.details() or "")
        # With the secret: a task that does not exist is MISSING (the worker dead-letters it).
        reply = _claim(channel, internal_metadata(stack.internal_secret), uuid.uuid4().hex)
        assert reply.outcome == lifecycle_pb2.CLAIM_OUTCOME_MISSING and not reply.task


def test_requests_keep_the_protos_rules(stack: Stack) -> None:
    with grpc.insecure_channel(stack.address("api_svc")) as channel, pytest.raises(grpc.RpcError) as refused:
        _claim(channel, internal_metadata(stack.internal_secret), "not-an-id")
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "task_id" in (refused.value.details() or "")


def test_the_gateway_does_not_route_it(gateway_channel: grpc.Channel, stack: Stack) -> None:
    with pytest.raises(grpc.RpcError) as refused:
        _claim(gateway_channel, internal_metadata(stack.internal_secret), uuid.uuid4().hex)
    assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
