"""Dead letters people can act on: an admin lists them (everything needed to understand the
failure and the message it came from) and replays one, by RPC, through REST and with the CLI;
replaying is idempotent; everyone else gets PERMISSION_DENIED (403)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest
from confluent_kafka import Producer
from pixelflow.v1 import admin_pb2, admin_pb2_grpc, auth_pb2, auth_pb2_grpc, task_pb2, task_pb2_grpc

from common.kafka import TASKS_TOPIC
from infra.stack import REPO_ROOT, Stack
from tests.conftest import TEST_PASSWORD, bearer, register_and_login, unique_email, wait_until
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sources() -> Iterator[ImageServer]:
    server = ImageServer()
    with server.running():
        yield server


def _run(stack: Stack, *arguments: str, extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **stack.service_environment(), **(extra or {})}
    command = [sys.executable, "-m", *arguments]
    return subprocess.run(
        command, check=False, env=environment, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120
    )


def _pixelflow(stack: Stack, token: str, *arguments: str) -> subprocess.CompletedProcess[str]:
    """The operators' commands of the `pixelflow` CLI, with an access token from the environment."""
    environment = {**os.environ, "PIXELFLOW_SERVER": stack.gateway_address, "PIXELFLOW_ACCESS_TOKEN": token}
    command = [str(Path(sys.executable).with_name("pixelflow")), *arguments]
    return subprocess.run(command, check=False, env=environment, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def admin(stack: Stack) -> tuple[str, str]:
    """A user made admin with the operators' command; (email, access token from a later login)."""
    email = unique_email("admin")
    with grpc.insecure_channel(stack.address("auth_svc")) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        register_and_login(auth, email)
        granted = _run(stack, "auth_svc", "grant-admin", email)
        assert granted.returncode == 0, granted.stderr
        # The flag reaches tokens issued from now on.
        login = auth.Login(auth_pb2.LoginRequest(email=email, password=TEST_PASSWORD))
        return email, login.access_token


def _admin_stub(channel: grpc.Channel) -> admin_pb2_grpc.AdminServiceStub:
    return admin_pb2_grpc.AdminServiceStub(channel)


def _find(admin: admin_pb2_grpc.AdminServiceStub, token: str, matches: Any) -> admin_pb2.DeadLetter | None:
    request = admin_pb2.ListDeadLettersRequest(page_size=20)
    while True:
        page = admin.ListDeadLetters(request, metadata=bearer(token))
        for letter in page.dead_letters:
            if matches(letter):
                return letter
        if not page.next_page_token:
            return None
        request.page_token = page.next_page_token


def _failed_task(stack: Stack, sources: ImageServer, token: str, path: str) -> task_pb2.Task:
    """A task whose source answers 503 every time: FAILED after its attempts, dead-lettered."""
    sources.serve_status(path, 503)
    with grpc.insecure_channel(stack.address("api_svc")) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        created = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=sources.url(path)), metadata=bearer(token))
        final = list(tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=created.id), metadata=bearer(token), timeout=60))
    assert final[-1].task.status == task_pb2.TASK_STATUS_FAILED, final[-1].task
    return final[-1].task


def test_ordinary_users_are_refused(stack: Stack) -> None:
    with grpc.insecure_channel(stack.address("auth_svc")) as channel:
        token = register_and_login(auth_pb2_grpc.AuthServiceStub(channel)).access_token
    with grpc.insecure_channel(stack.address("api_svc")) as channel, pytest.raises(grpc.RpcError) as caught:
        _admin_stub(channel).ListDeadLetters(admin_pb2.ListDeadLettersRequest(), metadata=bearer(token))
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED and "administrator" in error.details()
    with httpx.Client(base_url=f"http://{stack.gateway_address}", timeout=30) as http:
        headers = {"authorization": f"Bearer {token}"}
        assert http.get("/v1/admin/dead-letters", headers=headers).status_code == 403
        assert http.post("/v1/admin/dead-letters/0/0:replay", headers=headers, json={}).status_code == 403
        assert http.get("/v1/admin/dead-letters").status_code == 401


def test_an_admin_lists_a_dead_letter_and_replays_it_once(
    stack: Stack, sources: ImageServer, admin: tuple[str, str]
) -> None:
    _, token = admin
    with grpc.insecure_channel(stack.address("auth_svc")) as channel:
        owner = register_and_login(auth_pb2_grpc.AuthServiceStub(channel)).access_token
    path = f"/down-{uuid.uuid4().hex[:8]}.png"
    failed = _failed_task(stack, sources, owner, path)
    with grpc.insecure_channel(stack.gateway_address) as channel:
        stub = _admin_stub(channel)
        letter = None

        def listed() -> bool:
            nonlocal letter
            letter = _find(stub, token, lambda found: found.task_id == failed.id)
            return letter is not None

        wait_until(listed, "the dead letter never showed in ListDeadLetters", timeout=30)
        assert letter is not None
        assert (letter.error_code, letter.attempts) == (failed.error.code, 3)
        assert letter.worker_id and letter.dead_lettered_at.seconds > 0
        assert letter.source.topic == TASKS_TOPIC and letter.source.key == failed.id
        assert failed.id.encode() in letter.source.payload and "x-request-id" in letter.source.headers

        # The source is back: the CLI replays the task, which runs again from a fresh attempt count.
        sources.serve_bytes(path, image_bytes(64, 48), "image/png")
        replayed = _pixelflow(stack, token, "dead-letters", "replay", str(letter.partition), str(letter.offset))
        assert replayed.returncode == 0, replayed.stderr
        assert json.loads(replayed.stdout)["outcome"] == "REPLAY_OUTCOME_REPLAYED"

        with grpc.insecure_channel(stack.address("api_svc")) as api:
            tasks = task_pb2_grpc.TaskServiceStub(api)
            watched = tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=failed.id), metadata=bearer(owner), timeout=60)
            final = list(watched)[-1].task
        assert final.status == task_pb2.TASK_STATUS_COMPLETED, final
        assert final.attempts == 4 and not final.HasField("error")  # 3 before the replay, 1 after

        # Replaying again changes nothing: the task has completed since.
        again = stub.ReplayDeadLetter(
            admin_pb2.ReplayDeadLetterRequest(partition=letter.partition, offset=letter.offset), metadata=bearer(token)
        )
        assert again.outcome == admin_pb2.REPLAY_OUTCOME_ALREADY_FINISHED
        assert again.task.status == task_pb2.TASK_STATUS_COMPLETED and again.task.attempts == 4


def test_the_cli_lists_dead_letters_and_names_errors(stack: Stack, admin: tuple[str, str]) -> None:
    _, token = admin
    listed = _pixelflow(stack, token, "dead-letters", "list")
    assert listed.returncode == 0, listed.stderr
    assert all(json.loads(line)["source"]["topic"] for line in listed.stdout.splitlines())
    missing = _pixelflow(stack, token, "dead-letters", "replay", "0", "999999999")
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: no dead letter at partition 0") and "(NOT_FOUND)" in missing.stderr


def test_a_dead_letter_without_a_task_cannot_be_replayed(stack: Stack, admin: tuple[str, str]) -> None:
    _, token = admin
    key = f"garbage-{uuid.uuid4().hex[:8]}"
    producer = Producer({"bootstrap.servers": stack.infra.kafka_bootstrap})
    producer.produce(TASKS_TOPIC, key=key.encode(), value=b"\xff not a task message")
    assert producer.flush(10) == 0
    with grpc.insecure_channel(stack.address("api_svc")) as channel:
        stub = _admin_stub(channel)
        letter = None

        def listed() -> bool:
            nonlocal letter
            letter = _find(stub, token, lambda found: found.source.key == key)
            return letter is not None

        wait_until(listed, "the undecodable message was never dead-lettered", timeout=30)
        assert letter is not None and letter.task_id == "" and letter.error_code == "UNDECODABLE_MESSAGE"
        assert letter.source.payload == b"\xff not a task message"
        with pytest.raises(grpc.RpcError) as caught:
            stub.ReplayDeadLetter(
                admin_pb2.ReplayDeadLetterRequest(partition=letter.partition, offset=letter.offset),
                metadata=bearer(token),
            )
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION and "names no task" in error.details()
