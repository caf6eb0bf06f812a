"""Signed webhooks on the real stack (decision 0018): receivers on 127.0.0.1 (allowlisted) verify
every event with the `standardwebhooks` package; each end of a task (COMPLETED, FAILED,
CANCELLED) is announced once; failures are retried with growing gaps and given up after the
bounded period, every attempt visible on the task; private addresses are refused without a
connection; rotation, the user's default URL, bad URLs, REST through Envoy, and api_svc killed
between committing an outcome and sending its event."""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from pixelflow.v1 import auth_pb2_grpc, task_pb2, task_pb2_grpc, webhook_pb2, webhook_pb2_grpc
from standardwebhooks import Webhook, WebhookVerificationError

from api_svc.webhooks.sender import Verdict, WebhookSender
from common.egress import parse_allowed_networks
from infra.stack import Stack
from tests.conftest import TEST_ENVIRONMENT, bearer, register_and_login, running_stack, wait_until
from tests.images import ImageServer, image_bytes
from tests.integration.test_source_fetch import RecordingDialer, TableResolver
from tests.webhook_receiver import Receiver

pytestmark = pytest.mark.integration

RETRY_SECONDS = float(TEST_ENVIRONMENT["PIXELFLOW_WEBHOOK_RETRY_SECONDS"])
DELIVERED = webhook_pb2.WEBHOOK_DELIVERY_STATE_DELIVERED
FAILED = webhook_pb2.WEBHOOK_DELIVERY_STATE_FAILED


class Listener:
    """A TCP port on 127.0.0.2 (refused by the test allowlist) that counts connections."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.2", 0))
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._socket.accept()
            except OSError:
                return
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._socket.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    running = Listener()
    try:
        yield running
    finally:
        running.close()


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/photo.png", image_bytes(40, 30), "image/png")
    server.serve_bytes("/slow.png", image_bytes(40, 30), "image/png", delay=4)
    with server.running():
        yield server


@dataclass
class User:
    token: str
    tasks: task_pb2_grpc.TaskServiceStub
    webhooks: webhook_pb2_grpc.WebhookServiceStub

    @property
    def metadata(self) -> tuple[tuple[str, str]]:
        return bearer(self.token)

    def rotate(self) -> str:
        reply = self.webhooks.RotateWebhookSecret(webhook_pb2.RotateWebhookSecretRequest(), metadata=self.metadata)
        return str(reply.secret)

    def create(self, source: str, callback_url: str = "") -> task_pb2.Task:
        request = task_pb2.CreateTaskRequest(
            source_url=source,
            operations=[task_pb2.Operation(grayscale=task_pb2.Grayscale())],
            callback_url=callback_url,
        )
        task: task_pb2.Task = self.tasks.CreateTask(request, metadata=self.metadata)
        return task

    def get(self, task_id: str) -> task_pb2.Task:
        task: task_pb2.Task = self.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id), metadata=self.metadata)
        return task

    def ended(self, task_id: str, state: int, timeout: float = 30) -> task_pb2.Task:
        """The task once its (only) delivery is in `state`."""
        found: list[task_pb2.Task] = []

        def reached() -> bool:
            try:
                task = self.get(task_id)
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:  # api_svc restarting
                    raise
                return False
            found[:] = [task]
            return any(delivery.state == state for delivery in task.webhook_deliveries)

        wait_until(reached, f"the webhook of {task_id} never reached {state}: {found}", timeout)
        return found[0]


def new_user(stack: Stack, channel: grpc.Channel) -> User:
    with grpc.insecure_channel(stack.address("auth_svc")) as auth_channel:
        token = register_and_login(auth_pb2_grpc.AuthServiceStub(auth_channel)).access_token
    return User(token, task_pb2_grpc.TaskServiceStub(channel), webhook_pb2_grpc.WebhookServiceStub(channel))


@pytest.fixture(scope="module")
def api_channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.address("api_svc")) as channel:
        yield channel


def violation(error: Any) -> tuple[str, str]:
    bad_request = error_details_pb2.BadRequest()
    details = dict(error.trailing_metadata())["grpc-status-details-bin"]
    assert status_pb2.Status.FromString(details).details[0].Unpack(bad_request)
    [only] = bad_request.field_violations
    return only.field, only.reason


# --- one signed event per end ---------------------------------------------------------------


@pytest.mark.parametrize("outcome", ["completed", "failed", "cancelled"])
def test_each_end_is_announced_once_with_a_valid_signature(
    stack: Stack, api_channel: grpc.Channel, receiver: Receiver, images: ImageServer, outcome: str
) -> None:
    user = new_user(stack, api_channel)
    secret = user.rotate()
    path = f"/ends/{outcome}/{time.monotonic_ns()}"
    source = {"completed": "/photo.png", "failed": "/missing.png", "cancelled": "/slow.png"}[outcome]
    task = user.create(images.url(source), callback_url=receiver.url(path))
    assert task.callback_url == receiver.url(path)
    if outcome == "cancelled":
        user.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=task.id), metadata=user.metadata)

    final = user.ended(task.id, DELIVERED)
    [delivery] = final.webhook_deliveries
    [request] = receiver.at(path)  # the delivery is DELIVERED: nothing more is sent
    event = Webhook(secret).verify(request.body, request.headers)
    assert event["type"] == f"task.{outcome}"
    assert event["data"]["task"]["id"] == task.id
    assert event["data"]["task"]["status"] == f"TASK_STATUS_{outcome.upper()}"
    assert datetime.fromisoformat(event["timestamp"]) == final.completed_at.ToDatetime(tzinfo=UTC)
    if outcome == "completed":
        assert event["data"]["task"]["processedUrl"].endswith(f"/v1/tasks/{task.id}/result")
    if outcome == "failed":
        assert event["data"]["task"]["error"]["code"] == "SOURCE_NOT_FOUND"
    assert request.headers["webhook-id"] == delivery.id
    assert delivery.type == f"task.{outcome}" and delivery.url == receiver.url(path)
    [attempt] = delivery.attempts
    assert attempt.http_status == 200 and not attempt.error
    assert delivery.outcome == "delivered: the receiver answered 200"


# --- retries, giving up ---------------------------------------------------------------------


def test_a_failing_receiver_gets_retries_with_growing_gaps(
    stack: Stack, api_channel: grpc.Channel, receiver: Receiver, images: ImageServer
) -> None:
    user = new_user(stack, api_channel)
    secret = user.rotate()
    path = f"/flaky/{time.monotonic_ns()}"
    receiver.scripts[path] = [500, 500, 503, 200]
    task = user.create(images.url("/photo.png"), callback_url=receiver.url(path))

    final = user.ended(task.id, DELIVERED)
    [delivery] = final.webhook_deliveries
    assert [attempt.http_status for attempt in delivery.attempts] == [500, 500, 503, 200]
    assert delivery.attempts[0].error == "the receiver answered 500"
    requests = receiver.at(path)
    assert len(requests) == 4
    assert {request.headers["webhook-id"] for request in requests} == {delivery.id}  # one event
    for request in requests:
        Webhook(secret).verify(request.body, request.headers)
    assert len({request.body for request in requests}) == 1  # the same body every time
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(requests)]
    assert gaps == sorted(gaps) and gaps[0] >= 0.3, gaps


def test_a_receiver_that_never_succeeds_is_given_up_after_the_retry_period(
    stack: Stack, api_channel: grpc.Channel, receiver: Receiver, images: ImageServer
) -> None:
    user = new_user(stack, api_channel)
    user.rotate()
    path = f"/down/{time.monotonic_ns()}"
    receiver.scripts[path] = [503]
    task = user.create(images.url("/photo.png"), callback_url=receiver.url(path))

    final = user.ended(task.id, FAILED, timeout=RETRY_SECONDS + 20)
    [delivery] = final.webhook_deliveries
    assert len(delivery.attempts) >= 3
    assert all(attempt.http_status == 503 for attempt in delivery.attempts)
    assert delivery.outcome.startswith(f"given up after {len(delivery.attempts)} attempts"), delivery.outcome
    assert not delivery.HasField("next_attempt_at")
    last = delivery.attempts[-1].attempted_at.ToDatetime()
    assert (last - final.completed_at.ToDatetime()).total_seconds() <= RETRY_SECONDS
    assert len(receiver.at(path)) == len(delivery.attempts)


def test_410_gone_is_not_tried_again(
    stack: Stack, api_channel: grpc.Channel, receiver: Receiver, images: ImageServer
) -> None:
    user = new_user(stack, api_channel)
    user.rotate()
    path = f"/gone/{time.monotonic_ns()}"
    receiver.scripts[path] = [410]
    task = user.create(images.url("/photo.png"), callback_url=receiver.url(path))
    [delivery] = user.ended(task.id, FAILED).webhook_deliveries
    assert [attempt.http_status for attempt in delivery.attempts] == [410]
    assert "410 Gone" in delivery.outcome


# --- SSRF -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("host", "reason"), [("10.0.0.1", "a private address"), ("127.0.0.2", "a loopback address")])
def test_a_private_callback_address_is_refused_without_connecting(
    stack: Stack,
    api_channel: grpc.Channel,
    images: ImageServer,
    listener: Listener,
    host: str,
    reason: str,
) -> None:
    user = new_user(stack, api_channel)
    user.rotate()
    task = user.create(images.url("/photo.png"), callback_url=f"http://{host}:{listener.port}/hook")
    [delivery] = user.ended(task.id, FAILED).webhook_deliveries
    [attempt] = delivery.attempts  # refused addresses are not retried
    assert attempt.http_status == 0
    assert attempt.error == f"the callback address {host} is {reason}, which is not allowed"
    assert delivery.outcome == f"given up: {attempt.error}"
    assert listener.connections == 0


def test_a_redirect_to_a_private_address_is_not_followed(
    stack: Stack, api_channel: grpc.Channel, receiver: Receiver, images: ImageServer, listener: Listener
) -> None:
    user = new_user(stack, api_channel)
    user.rotate()
    path = f"/moved/{time.monotonic_ns()}"
    receiver.scripts[path] = [302]
    receiver.redirects[path] = f"http://127.0.0.2:{listener.port}/hook"
    task = user.create(images.url("/photo.png"), callback_url=receiver.url(path))
    # Every attempt is a 302 that is recorded and retried, until the period ends.
    [delivery] = user.ended(task.id, FAILED, timeout=RETRY_SECONDS + 20).webhook_deliveries
    assert {attempt.http_status for attempt in delivery.attempts} == {302}
    assert delivery.attempts[0].error == "the receiver answered 302: webhooks do not follow redirects"
    assert listener.connections == 0


async def test_a_callback_host_resolving_to_a_private_address_is_refused_before_dialling() -> None:
    dialer = RecordingDialer()
    sender = WebhookSender(
        parse_allowed_networks("127.0.0.1/32"),
        2.0,
        dialer=dialer,
        resolver=TableResolver({"hooks.test": [["10.0.0.1"]]}),
    )
    result = await sender.send("http://hooks.test/hook", {}, b"{}")
    assert result.verdict is Verdict.GIVE_UP
    assert result.error == "the callback host hooks.test resolves to a private address (10.0.0.1), which is not allowed"
    assert dialer.attempts == []


# --- settings: the secret, the default URL, bad URLs -----------------------------------------


def test_events_after_a_rotation_verify_with_the_new_secret_only(
    stack: Stack, api_channel: grpc.Channel, receiver: Receiver, images: ImageServer
) -> None:
    user = new_user(stack, api_channel)
    first = user.rotate()
    path = f"/rotated/{time.monotonic_ns()}"
    before = user.create(images.url("/photo.png"), callback_url=receiver.url(path))
    user.ended(before.id, DELIVERED)
    second = user.rotate()
    assert second != first and second.startswith("whsec_")
    settings = user.webhooks.GetWebhookSettings(webhook_pb2.GetWebhookSettingsRequest(), metadata=user.metadata)
    assert settings.has_secret and settings.secret_hint == f"whsec_…{second[-4:]}"
    assert second not in str(settings)  # the secret is never shown again
    after = user.create(images.url("/photo.png"), callback_url=receiver.url(path))
    user.ended(after.id, DELIVERED)

    old, new = receiver.at(path)
    assert Webhook(first).verify(old.body, old.headers)["data"]["task"]["id"] == before.id
    assert Webhook(second).verify(new.body, new.headers)["data"]["task"]["id"] == after.id
    with pytest.raises(WebhookVerificationError):
        Webhook(first).verify(new.body, new.headers)


def test_the_users_default_applies_when_the_task_names_none(
    stack: Stack, api_channel: grpc.Channel, receiver: Receiver, images: ImageServer
) -> None:
    user = new_user(stack, api_channel)
    path = f"/default/{time.monotonic_ns()}"
    update = webhook_pb2.UpdateWebhookSettingsRequest(default_url=receiver.url(path))
    with pytest.raises(grpc.RpcError) as caught:  # nothing to sign with yet
        user.webhooks.UpdateWebhookSettings(update, metadata=user.metadata)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "RotateWebhookSecret" in error.details()
    with pytest.raises(grpc.RpcError) as caught:
        user.create(images.url("/photo.png"), callback_url=receiver.url(path))
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert user.create(images.url("/photo.png")).callback_url == ""  # no default, no secret: nowhere

    secret = user.rotate()
    settings = user.webhooks.UpdateWebhookSettings(update, metadata=user.metadata)
    assert settings.default_url == receiver.url(path)
    task = user.create(images.url("/photo.png"))
    assert task.callback_url == receiver.url(path)
    user.ended(task.id, DELIVERED)
    [request] = receiver.at(path)
    assert Webhook(secret).verify(request.body, request.headers)["data"]["task"]["id"] == task.id

    cleared = user.webhooks.UpdateWebhookSettings(webhook_pb2.UpdateWebhookSettingsRequest(), metadata=user.metadata)
    assert cleared.default_url == "" and user.create(images.url("/photo.png")).callback_url == ""


@pytest.mark.parametrize(
    ("url", "rule"),
    [
        ("ftp://example.com/hook", "scheme"),
        ("http://user:secret@example.com/hook", "credentials"),
        ("https://example.com/" + "a" * 2048, "max_len"),
        ("https://exa mple.com/", "whitespace"),
        ("https:///hook", "host_required"),
    ],
)
def test_a_bad_callback_url_is_invalid_argument_naming_the_field(
    stack: Stack, api_channel: grpc.Channel, images: ImageServer, url: str, rule: str
) -> None:
    user = new_user(stack, api_channel)
    user.rotate()
    with pytest.raises(grpc.RpcError) as caught:
        user.create(images.url("/photo.png"), callback_url=url)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation(caught.value) == ("callback_url", f"callback_url.{rule}")
    with pytest.raises(grpc.RpcError) as caught:
        user.webhooks.UpdateWebhookSettings(
            webhook_pb2.UpdateWebhookSettingsRequest(default_url=url), metadata=user.metadata
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violation(caught.value) == ("default_url", f"default_url.{rule}")


def test_settings_rotation_and_deliveries_over_rest(
    stack: Stack, api_channel: grpc.Channel, receiver: Receiver, images: ImageServer
) -> None:
    user = new_user(stack, api_channel)
    headers = {"authorization": f"Bearer {user.token}"}
    path = f"/rest/{time.monotonic_ns()}"
    with httpx.Client(base_url=f"http://{stack.gateway_address}", headers=headers, timeout=30) as rest:
        assert rest.get("/v1/webhooks/settings").json() == {"defaultUrl": "", "hasSecret": False, "secretHint": ""}
        rotated = rest.post("/v1/webhooks/secret:rotate", json={})
        assert rotated.status_code == 200, rotated.text
        secret = rotated.json()["secret"]
        assert rotated.json()["settings"]["secretHint"] == f"whsec_…{secret[-4:]}"
        bad = rest.put("/v1/webhooks/settings", json={"defaultUrl": "gopher://example.com"})
        assert bad.status_code == 400 and bad.json()["details"][0]["fieldViolations"][0]["field"] == "default_url"
        updated = rest.put("/v1/webhooks/settings", json={"defaultUrl": receiver.url(path)})
        assert updated.status_code == 200 and updated.json()["defaultUrl"] == receiver.url(path)
        assert "secret" not in rest.get("/v1/webhooks/settings").json()

        task = user.create(images.url("/photo.png"))
        user.ended(task.id, DELIVERED)
        shown = rest.get(f"/v1/tasks/{task.id}").json()
    [delivery] = shown["webhookDeliveries"]
    assert delivery["state"] == "WEBHOOK_DELIVERY_STATE_DELIVERED"
    assert delivery["attempts"][0]["httpStatus"] == 200
    [request] = receiver.at(path)
    event = Webhook(secret).verify(request.body, request.headers)
    # The event's task is the task as REST renders it (GetTask adds only the deliveries).
    assert event["data"]["task"] == {key: value for key, value in shown.items() if key != "webhookDeliveries"}
    assert json.loads(request.body) == event


# --- api_svc killed between the outcome and its event ---------------------------------------


@pytest.fixture(scope="module")
def faulty_stack() -> Iterator[Stack]:
    with running_stack("webhook-faults", TEST_ENVIRONMENT) as running:
        yield running


def test_api_svc_killed_after_the_outcome_before_the_event_still_sends_it_once(
    faulty_stack: Stack, receiver: Receiver, images: ImageServer
) -> None:
    marker = faulty_stack.root / "failpoint-webhook"
    faulty_stack.environment["PIXELFLOW_FAILPOINTS"] = f"task.final_locked=kill-once:{marker}"
    faulty_stack.restart_service("api_svc")
    try:
        with grpc.insecure_channel(faulty_stack.address("api_svc")) as channel:
            user = new_user(faulty_stack, channel)
            secret = user.rotate()
            path = f"/killed/{time.monotonic_ns()}"
            task = user.create(images.url("/photo.png"), callback_url=receiver.url(path))
            wait_until(marker.exists, "api_svc never committed the outcome", timeout=30)
            api = faulty_stack.services["api_svc"]
            wait_until(lambda: not api.running, "api_svc did not die", timeout=10)
            assert api.exit_code == -9
            faulty_stack.restart_service("api_svc")  # its supervisor would

            final = user.ended(task.id, DELIVERED, timeout=60)
        assert final.status == task_pb2.TASK_STATUS_COMPLETED
        [delivery] = final.webhook_deliveries
        [request] = receiver.at(path)
        event = Webhook(secret).verify(request.body, request.headers)
        assert event["type"] == "task.completed" and event["data"]["task"]["id"] == task.id
        assert request.headers["webhook-id"] == delivery.id
    finally:
        del faulty_stack.environment["PIXELFLOW_FAILPOINTS"]
        faulty_stack.restart_service("api_svc")
