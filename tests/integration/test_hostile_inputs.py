"""Bad input is never INTERNAL: each answers INVALID_ARGUMENT naming what to fix, through
native gRPC and through Envoy's REST transcoding alike (400)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from pixelflow.v1 import auth_pb2, auth_pb2_grpc, task_pb2, task_pb2_grpc

from infra.stack import Stack
from tests.conftest import bearer, register_and_login, unique_email

pytestmark = pytest.mark.integration

PASSWORD = "a sound password"

BAD_EMAILS = {
    "over 254 characters": "a" * 300 + "@example.com",
    "a NUL": "a\x00b@example.com",
    "a control character": "a\x1bb@example.com",
    "a text-direction override": "admin\u202e@example.com",
}


@pytest.fixture(scope="module")
def channels(stack: Stack) -> Iterator[tuple[auth_pb2_grpc.AuthServiceStub, task_pb2_grpc.TaskServiceStub]]:
    with (
        grpc.insecure_channel(stack.address("auth_svc")) as auth,
        grpc.insecure_channel(stack.address("api_svc")) as api,
    ):
        yield auth_pb2_grpc.AuthServiceStub(auth), task_pb2_grpc.TaskServiceStub(api)


@pytest.fixture(scope="module")
def rest(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{stack.gateway_address}", timeout=30) as client:
        yield client


def _code(call: Callable[[], Any]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    return error.code(), error.details()


@pytest.mark.parametrize("what", list(BAD_EMAILS))
def test_bad_emails_at_register_and_login(channels: Any, rest: httpx.Client, what: str) -> None:
    auth, _ = channels
    email = BAD_EMAILS[what]
    for call in (
        lambda: auth.Register(auth_pb2.RegisterRequest(email=email, password=PASSWORD)),
        lambda: auth.Login(auth_pb2.LoginRequest(email=email, password=PASSWORD)),
    ):
        code, message = _code(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "email must look like" in message, (what, code, message)
    for path in ("/v1/auth/register", "/v1/auth/login"):
        response = rest.post(path, json={"email": email, "password": PASSWORD})
        assert response.status_code == 400, (what, path, response.text)


def test_a_password_with_a_nul_is_refused(channels: Any) -> None:
    auth, _ = channels
    request = auth_pb2.RegisterRequest(email=unique_email("nul"), password="first part\x00ignored by bcrypt")
    code, message = _code(lambda: auth.Register(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "NUL" in message


def test_a_password_typed_in_another_unicode_form_logs_in(channels: Any) -> None:
    auth, _ = channels
    email = unique_email("nfc")
    auth.Register(auth_pb2.RegisterRequest(email=email, password="caf\u00e9 au lait!"))  # é: one code point
    login = auth.Login(auth_pb2.LoginRequest(email=email, password="cafe\u0301 au lait!"))  # e + combining accent
    assert login.access_token


def test_a_display_name_that_reorders_text_is_refused(channels: Any) -> None:
    auth, _ = channels
    request = auth_pb2.RegisterRequest(email=unique_email("bidi"), password=PASSWORD, display_name="evil\u202etxt.exe")
    code, message = _code(lambda: auth.Register(request))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "text-direction" in message


def test_an_unknown_status_filter(channels: Any, rest: httpx.Client) -> None:
    auth, tasks = channels
    login = register_and_login(auth)
    unknown = task_pb2.TaskStatus.ValueType(99)  # what a client built on a newer contract may send
    with pytest.raises(grpc.RpcError) as caught:
        tasks.ListTasks(task_pb2.ListTasksRequest(status=unknown), metadata=bearer(login.access_token))
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT and error.details().startswith("status: ")
    bad_request = error_details_pb2.BadRequest()
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    assert status_pb2.Status.FromString(details).details[0].Unpack(bad_request)
    assert [(v.field, v.reason) for v in bad_request.field_violations] == [("status", "enum.defined_only")]
    # REST: a 400 as well.
    response = rest.get("/v1/tasks", params={"status": "99"}, headers={"authorization": f"Bearer {login.access_token}"})
    assert response.status_code == 400, response.text
