"""Quotas on the real stack: each limit refused over gRPC (RESOURCE_EXHAUSTED with a QuotaFailure
naming it, RetryInfo where waiting helps) and over REST (429, the details in the body); 50
creates racing one active-task limit; slots given back when tasks complete, are cancelled or
deleted, and reclaimed when their task ended without giving them back; GetUsage; overrides by
administrators only. The shared stack keeps its defaults: each test lowers its own user's
limits through AdminService.SetQuota."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2, status_pb2
from pixelflow.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
)
from pymongo import AsyncMongoClient

from infra.stack import REPO_ROOT, Stack
from pixelflow_client import Client, PixelFlowError
from tasks.lifecycle import active_slot_id
from tests.conftest import TEST_PASSWORD, bearer, register_and_login, unique_email
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration

PNG = image_bytes(64, 48, "PNG")


class Gate:
    """A source that answers only once opened: its tasks stay PENDING or PROCESSING till then."""

    def __init__(self) -> None:
        self.opened = threading.Event()

    def route(self, handler: BaseHTTPRequestHandler) -> None:
        self.opened.wait(60)
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(len(PNG)))
        handler.end_headers()
        handler.wfile.write(PNG)


@pytest.fixture(scope="module")
def gate() -> Gate:
    return Gate()


@pytest.fixture(scope="module")
def images(gate: Gate) -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/photo.png", PNG, "image/png")
    server.routes["/gated.png"] = gate.route
    with server.running():
        yield server
        gate.opened.set()


@pytest.fixture(scope="module")
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.gateway_address) as opened:
        yield opened


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{stack.gateway_address}", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def admin_token(stack: Stack) -> str:
    """A user made admin with the operators' command; an access token from a later login."""
    email = unique_email("quota-admin")
    with grpc.insecure_channel(stack.address("auth_svc")) as auth_channel:
        auth = auth_pb2_grpc.AuthServiceStub(auth_channel)
        register_and_login(auth, email)
        environment = {**os.environ, **stack.service_environment()}
        granted = subprocess.run(
            [sys.executable, "-m", "auth_svc", "grant-admin", email],
            check=False,
            env=environment,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert granted.returncode == 0, granted.stderr
        login = auth.Login(auth_pb2.LoginRequest(email=email, password=TEST_PASSWORD))
        token: str = login.access_token
        return token


class User:
    def __init__(self, stack: Stack, channel: grpc.Channel) -> None:
        with grpc.insecure_channel(stack.address("auth_svc")) as auth_channel:
            login = register_and_login(auth_pb2_grpc.AuthServiceStub(auth_channel))
        self.id = login.user.id
        self.token = login.access_token
        self.metadata = bearer(login.access_token)
        self.tasks = task_pb2_grpc.TaskServiceStub(channel)
        self.quota = quota_pb2_grpc.QuotaServiceStub(channel)

    def create(self, **fields: Any) -> task_pb2.Task:
        task: task_pb2.Task = self.tasks.CreateTask(task_pb2.CreateTaskRequest(**fields), metadata=self.metadata)
        return task

    def upload(self, data: bytes) -> task_pb2.Upload:
        requests = [task_pb2.CreateUploadRequest(filename="a.png", body=httpbody_pb2.HttpBody(data=data))]
        upload: task_pb2.Upload = self.tasks.CreateUpload(iter(requests), metadata=self.metadata)
        return upload

    def usage(self) -> dict[str, quota_pb2.QuotaUsage]:
        usage = self.quota.GetUsage(quota_pb2.GetUsageRequest(), metadata=self.metadata)
        assert usage.user_id == self.id
        return {entry.name: entry for entry in usage.quotas}

    def finished(self, task_id: str) -> task_pb2.Task:
        final = None
        for update in self.tasks.WatchTask(
            task_pb2.WatchTaskRequest(task_id=task_id), metadata=self.metadata, timeout=60
        ):
            final = update.task
        assert final is not None
        return final


@pytest.fixture
def user(stack: Stack, channel: grpc.Channel) -> User:
    return User(stack, channel)


def set_quota(channel: grpc.Channel, admin_token: str, user_id: str, **limits: int) -> admin_pb2.UserQuota:
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    request = admin_pb2.SetQuotaRequest(user_id=user_id, overrides=quota_pb2.QuotaOverrides(**limits))
    answer: admin_pb2.UserQuota = admin.SetQuota(request, metadata=bearer(admin_token))
    return answer


def quota_refusal(call: Any) -> tuple[str, list[tuple[str, str]], float | None]:
    """The message, QuotaFailure violations and RetryInfo seconds of a call refused over a quota."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    violations: list[tuple[str, str]] = []
    retry: float | None = None
    for key, value in error.trailing_metadata() or ():
        if key != "grpc-status-details-bin":
            continue
        for detail in status_pb2.Status.FromString(value).details:
            failure, info = error_details_pb2.QuotaFailure(), error_details_pb2.RetryInfo()
            if detail.Unpack(failure):
                violations += [(v.subject, v.description) for v in failure.violations]
            elif detail.Unpack(info):
                retry = info.retry_delay.ToTimedelta().total_seconds()
    return error.details(), violations, retry


def test_fifty_parallel_creates_never_pass_the_active_task_limit(
    user: User, channel: grpc.Channel, admin_token: str, images: ImageServer, gate: Gate
) -> None:
    set_quota(channel, admin_token, user.id, active_tasks=5)
    gated = images.url("/gated.png")
    start = threading.Barrier(50)

    def create(_: int) -> tuple[str, Any]:
        start.wait(30)  # all 50 at once
        try:
            return "ok", user.create(source_url=gated)
        except grpc.RpcError as exc:
            return "refused", exc

    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(create, range(50)))
    accepted = [task for kind, task in outcomes if kind == "ok"]
    refused = [error for kind, error in outcomes if kind == "refused"]
    # The margin is 0: a slot is an insert-once document (decision 0020), and no task ends
    # during the burst (their source does not answer yet), so exactly the limit gets in.
    assert len(accepted) == 5, [e.details() for e in refused[:3]]
    for error in refused:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.details()
    message, violations, retry = quota_refusal(lambda: user.create(source_url=gated))
    assert message.startswith("quota exceeded: active_tasks: 5 of 5")
    assert violations == [(f"user:{user.id}", message.removeprefix("quota exceeded: "))]
    assert retry == 5
    usage = user.usage()
    assert (usage["active_tasks"].value, usage["active_tasks"].used, usage["active_tasks"].overridden) == (5, 5, True)

    # A cancelled task gives its slot back, and so does a deleted one.
    user.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=accepted[0].id), metadata=user.metadata)
    accepted[0] = user.create(source_url=gated)
    quota_refusal(lambda: user.create(source_url=gated))
    user.tasks.DeleteTask(task_pb2.DeleteTaskRequest(task_id=accepted[1].id), metadata=user.metadata)
    accepted[1] = user.create(source_url=gated)
    quota_refusal(lambda: user.create(source_url=gated))

    # Completed ones too: once the source answers, every task ends and five more fit.
    gate.opened.set()
    for task in accepted:
        assert user.finished(task.id).status == task_pb2.TASK_STATUS_COMPLETED
    assert user.usage()["active_tasks"].used == 0
    again = [user.create(source_url=images.url("/photo.png")) for _ in range(5)]
    for task in again:
        assert user.finished(task.id).status == task_pb2.TASK_STATUS_COMPLETED


def test_a_slot_whose_task_ended_or_vanished_is_reclaimed(
    user: User, channel: grpc.Channel, admin_token: str, images: ImageServer, stack: Stack
) -> None:
    """What api_svc leaves when it dies between steps: a slot of a finished task (killed before
    giving it back) and one of a task never stored (killed between the slot and the task)."""
    set_quota(channel, admin_token, user.id, active_tasks=2)
    done = user.create(source_url=images.url("/photo.png"))
    assert user.finished(done.id).status == task_pb2.TASK_STATUS_COMPLETED

    async def plant() -> None:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.infra.mongo_uri, tz_aware=True)
        try:
            locks = mongo["pixelflow"]["task_locks"]
            long_ago = datetime.now(UTC) - timedelta(minutes=5)
            for index, task_id in enumerate((done.id, "f" * 32)):
                slot = {"task_id": task_id, "owner_id": user.id, "kind": "active", "at": long_ago}
                await locks.insert_one({"_id": active_slot_id(user.id, index), **slot})
        finally:
            await mongo.close()

    asyncio.run(plant())
    # Both slots are taken, by tasks that are not active: both are reclaimed.
    first = user.create(source_url=images.url("/photo.png"))
    second = user.create(source_url=images.url("/photo.png"))
    for task in (first, second):
        assert user.finished(task.id).status == task_pb2.TASK_STATUS_COMPLETED


def test_tasks_per_day_count_calendar_days_and_deleting_gives_none_back(
    user: User, channel: grpc.Channel, admin_token: str, images: ImageServer
) -> None:
    set_quota(channel, admin_token, user.id, tasks_per_day=3)
    created = [user.create(source_url=images.url("/photo.png")) for _ in range(3)]
    message, violations, retry = quota_refusal(lambda: user.create(source_url=images.url("/photo.png")))
    assert message.startswith("quota exceeded: tasks_per_day: 3 of 3 tasks created today (UTC)")
    assert violations == [(f"user:{user.id}", message.removeprefix("quota exceeded: "))]
    now = datetime.now(UTC)
    midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    assert retry is not None and abs(retry - (midnight - now).total_seconds()) < 60
    usage = user.usage()["tasks_per_day"]
    assert (usage.value, usage.used) == (3, 3)
    assert usage.resets_at.ToDatetime(tzinfo=UTC) == midnight
    for task in created:
        user.finished(task.id)
    user.tasks.DeleteTask(task_pb2.DeleteTaskRequest(task_id=created[0].id), metadata=user.metadata)
    quota_refusal(lambda: user.create(source_url=images.url("/photo.png")))
    # Raising the limit takes effect at the next call.
    set_quota(channel, admin_token, user.id, tasks_per_day=4)
    user.finished(user.create(source_url=images.url("/photo.png")).id)


def test_the_upload_size_limit_is_per_user(
    user: User, stack: Stack, channel: grpc.Channel, admin_token: str, http: httpx.Client
) -> None:
    small = image_bytes(8, 8, "PNG")
    large = image_bytes(300, 300, "BMP")
    set_quota(channel, admin_token, user.id, max_upload_bytes=len(large) - 1)
    assert user.upload(small).size_bytes == len(small)
    message, violations, retry = quota_refusal(lambda: user.upload(large))
    assert message == f"quota exceeded: max_upload_bytes: uploads may hold at most {len(large) - 1} bytes"
    assert violations == [(f"user:{user.id}", message.removeprefix("quota exceeded: "))] and retry is None
    # Inline in CreateTask too.
    inline = task_pb2.InlineUpload(content=large, filename="a.bmp")
    assert quota_refusal(lambda: user.create(upload=inline))[1][0][1].startswith("max_upload_bytes:")
    # Over REST: 429 with the QuotaFailure in the body.
    response = http.post(
        "/v1/uploads",
        content=large,
        headers={"authorization": f"Bearer {user.token}", "content-type": "image/bmp"},
    )
    assert response.status_code == 429, response.text
    assert _quota_details(response.json()) == [
        {
            "subject": f"user:{user.id}",
            "description": violations[0][1],
            "quotaId": "max_upload_bytes",
            "quotaValue": str(len(large) - 1),
        }
    ]
    # Another user is not bound by it.
    other = User(stack, channel)
    assert other.upload(large).size_bytes == len(large)
    assert user.usage()["max_upload_bytes"].value == len(large) - 1


def test_stored_bytes_count_uploads_results_and_inline_sources_and_deleting_frees_them(
    user: User, channel: grpc.Channel, admin_token: str, images: ImageServer
) -> None:
    assert user.usage()["stored_bytes"].used == 0
    upload = user.upload(PNG)
    task = user.create(upload_id=upload.id)
    done = user.finished(task.id)
    inline = user.create(upload=task_pb2.InlineUpload(content=PNG, filename="b.png"))
    inline_done = user.finished(inline.id)
    expected = upload.size_bytes + done.result.size_bytes + len(PNG) + inline_done.result.size_bytes
    assert user.usage()["stored_bytes"].used == expected
    # Full: no room for another upload or another task's result.
    set_quota(channel, admin_token, user.id, stored_bytes=expected + 10)
    message, violations, _ = quota_refusal(lambda: user.upload(PNG))
    assert message.startswith("quota exceeded: stored_bytes:") and violations[0][0] == f"user:{user.id}"
    message, _, _ = quota_refusal(lambda: user.create(upload=task_pb2.InlineUpload(content=PNG, filename="c.png")))
    assert message.startswith(f"quota exceeded: stored_bytes: {expected} of {expected + 10} bytes used")
    set_quota(channel, admin_token, user.id, stored_bytes=expected)
    assert quota_refusal(lambda: user.create(source_url=images.url("/photo.png")))[1][0][1].startswith("stored_bytes:")
    # Deleting the inline task frees its source and its result.
    user.tasks.DeleteTask(task_pb2.DeleteTaskRequest(task_id=inline.id), metadata=user.metadata)
    assert user.usage()["stored_bytes"].used == upload.size_bytes + done.result.size_bytes
    user.finished(user.create(source_url=images.url("/photo.png")).id)


def test_over_rest_a_refusal_is_429_with_the_details_and_usage_is_readable(
    user: User, channel: grpc.Channel, admin_token: str, images: ImageServer, http: httpx.Client
) -> None:
    headers = {"authorization": f"Bearer {user.token}"}
    set_quota(channel, admin_token, user.id, active_tasks=0)
    response = http.post("/v1/tasks", headers=headers, json={"sourceUrl": images.url("/photo.png")})
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["message"].startswith("quota exceeded: active_tasks: 0 of 0")
    assert _quota_details(body) == [
        {
            "subject": f"user:{user.id}",
            "description": body["message"].removeprefix("quota exceeded: "),
            "quotaId": "active_tasks",
            "quotaValue": "0",
        }
    ]
    retry = [d for d in body["details"] if d["@type"] == "type.googleapis.com/google.rpc.RetryInfo"]
    assert retry == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "5s"}]

    usage = http.get("/v1/usage", headers=headers)
    assert usage.status_code == 200, usage.text
    by_name = {entry["name"]: entry for entry in usage.json()["quotas"]}
    assert list(by_name) == ["active_tasks", "tasks_per_day", "stored_bytes", "max_upload_bytes"]
    assert by_name["active_tasks"] == {
        "limit": "QUOTA_LIMIT_ACTIVE_TASKS",
        "name": "active_tasks",
        "value": "0",
        "used": "0",
        "overridden": True,
    }
    assert by_name["tasks_per_day"]["overridden"] is False and by_name["tasks_per_day"]["resetsAt"].endswith("Z")
    assert http.get("/v1/usage").status_code == 401


def test_overrides_are_for_administrators_only(
    user: User, channel: grpc.Channel, admin_token: str, http: httpx.Client
) -> None:
    admin = admin_pb2_grpc.AdminServiceStub(channel)
    calls: tuple[Callable[[], object], ...] = (
        lambda: admin.GetQuota(admin_pb2.GetQuotaRequest(user_id=user.id), metadata=user.metadata),
        lambda: admin.SetQuota(
            admin_pb2.SetQuotaRequest(user_id=user.id, overrides=quota_pb2.QuotaOverrides(active_tasks=1000)),
            metadata=user.metadata,
        ),
    )
    for call in calls:
        with pytest.raises(grpc.RpcError) as caught:
            call()
        denied: Any = caught.value
        assert denied.code() == grpc.StatusCode.PERMISSION_DENIED
    user_headers = {"authorization": f"Bearer {user.token}"}
    assert http.get(f"/v1/admin/quotas/{user.id}", headers=user_headers).status_code == 403
    assert http.put(f"/v1/admin/quotas/{user.id}", headers=user_headers, json={"activeTasks": 9}).status_code == 403
    assert user.usage()["active_tasks"].overridden is False

    # An administrator sets, reads and clears them (REST: PUT body = the overrides).
    admin_headers = {"authorization": f"Bearer {admin_token}"}
    put = http.put(f"/v1/admin/quotas/{user.id}", headers=admin_headers, json={"activeTasks": 9, "storedBytes": "0"})
    assert put.status_code == 200, put.text
    assert put.json()["overrides"] == {"activeTasks": "9", "storedBytes": "0"}
    quota = admin.GetQuota(admin_pb2.GetQuotaRequest(user_id=user.id), metadata=bearer(admin_token))
    assert quota.overrides == quota_pb2.QuotaOverrides(active_tasks=9, stored_bytes=0)
    usage = {entry.name: entry for entry in quota.usage.quotas}
    assert (usage["active_tasks"].value, usage["active_tasks"].overridden) == (9, True)
    assert user.usage()["stored_bytes"].value == 0
    cleared = set_quota(channel, admin_token, user.id)
    assert not cleared.overrides.ListFields()
    assert all(not entry.overridden for entry in user.usage().values())
    with pytest.raises(grpc.RpcError) as caught:
        admin.GetQuota(admin_pb2.GetQuotaRequest(user_id="not-a-user"), metadata=bearer(admin_token))
    invalid: Any = caught.value
    assert invalid.code() == grpc.StatusCode.INVALID_ARGUMENT


def _quota_details(body: dict[str, Any]) -> list[dict[str, str]]:
    failures = [d for d in body["details"] if d["@type"] == "type.googleapis.com/google.rpc.QuotaFailure"]
    assert len(failures) == 1, body
    # Envoy prints every field, the empty ones too (always_print_primitive_fields).
    empty: tuple[object, ...] = ("", {}, "0")
    return [
        {name: value for name, value in violation.items() if value not in empty or name == "quotaValue"}
        for violation in failures[0]["violations"]
    ]


def _pixelflow(stack: Stack, token: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PIXELFLOW_SERVER": stack.gateway_address, "PIXELFLOW_ACCESS_TOKEN": token}
    command = [str(Path(sys.executable).with_name("pixelflow")), *arguments]
    return subprocess.run(command, check=False, env=environment, capture_output=True, text=True, timeout=120)


def test_the_sdk_and_the_command_show_quotas(user: User, stack: Stack, admin_token: str, images: ImageServer) -> None:
    # An administrator sets one limit, then another: the first stays (the command merges).
    assert _pixelflow(stack, admin_token, "quotas", "set", user.id, "--active-tasks", "0").returncode == 0
    answer = _pixelflow(stack, admin_token, "quotas", "set", user.id, "--tasks-per-day", "7")
    assert answer.returncode == 0, answer.stderr
    assert json.loads(answer.stdout)["overrides"] == {"active_tasks": "0", "tasks_per_day": "7"}
    denied = _pixelflow(stack, user.token, "quotas", "get", user.id)
    assert denied.returncode == 1 and "PERMISSION_DENIED" in denied.stderr

    shown = _pixelflow(stack, user.token, "usage")
    assert shown.returncode == 0, shown.stderr
    assert "active_tasks" in shown.stdout and "0 *" in shown.stdout and "7 *" in shown.stdout
    listed = json.loads(_pixelflow(stack, user.token, "usage", "--json").stdout)
    assert [entry["name"] for entry in listed["quotas"]][:2] == ["active_tasks", "tasks_per_day"]

    with Client(stack.gateway_address, access_token=user.token) as client:
        with pytest.raises(PixelFlowError) as caught:
            client.create_task(source_url=images.url("/photo.png"))
        error = caught.value
        assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED and error.retry_after == 5
        [violation] = error.quota_violations
        assert (violation.subject, violation.quota_id, violation.quota_value) == (f"user:{user.id}", "active_tasks", 0)
        assert violation.description.startswith("active_tasks: 0 of 0")
        assert [entry.used for entry in client.usage().quotas][:2] == [0, 0]
    submitted = _pixelflow(stack, user.token, "submit", images.url("/photo.png"))
    assert submitted.returncode != 0
    assert f"quota user:{user.id}: active_tasks: 0 of 0" in submitted.stderr + submitted.stdout

    cleared = _pixelflow(stack, admin_token, "quotas", "clear", user.id)
    assert cleared.returncode == 0 and json.loads(cleared.stdout).get("overrides", {}) == {}
