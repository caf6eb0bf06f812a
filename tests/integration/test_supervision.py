"""`make run`'s supervisor on a real stack: a process killed with SIGKILL (a worker OOM-killed
by a hostile image, a crashed FerretDB) is started again while the rest keeps serving."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from pixelflow.v1 import auth_pb2_grpc, task_pb2, task_pb2_grpc

from infra.stack import Stack, is_serving
from infra.supervisor import RestartPolicy, Supervisor
from tests.conftest import TEST_ENVIRONMENT, bearer, register_and_login, running_stack, wait_until
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration


class _Supervising:
    def __init__(self, stack: Stack) -> None:
        self.logs: list[str] = []
        self.supervisor = Supervisor(stack.supervised(), RestartPolicy(first_delay=0.2), log=self.logs.append)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            self.supervisor.tick()

    def __enter__(self) -> _Supervising:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=120)


@pytest.fixture(scope="module")
def supervised_stack() -> Iterator[Stack]:
    with running_stack("supervision", TEST_ENVIRONMENT) as stack:
        yield stack


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/small.png", image_bytes(30, 20), "image/png")
    with server.running():
        yield server


def _completes(stack: Stack, images: ImageServer) -> task_pb2.Task:
    with grpc.insecure_channel(stack.address("auth_svc")) as auth_channel:
        login = register_and_login(auth_pb2_grpc.AuthServiceStub(auth_channel))
    metadata: Any = bearer(login.access_token)
    with grpc.insecure_channel(stack.address("api_svc")) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        request = task_pb2.CreateTaskRequest(source_url=images.url("/small.png"))
        created: list[task_pb2.Task] = []

        def create() -> bool:
            # Right after a store restart the first call may find a dead pooled connection:
            # UNAVAILABLE, "try again shortly", and a client does.
            try:
                created.append(tasks.CreateTask(request, metadata=metadata))
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                return False
            return True

        wait_until(create, "CreateTask stayed UNAVAILABLE", timeout=30)
        task = created[0]
        final = None
        for update in tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task.id), metadata=metadata, timeout=60):
            final = update.task
    assert final is not None
    return final


def test_a_killed_worker_is_restarted_while_the_api_keeps_serving(supervised_stack: Stack, images: ImageServer) -> None:
    with _Supervising(supervised_stack) as supervising:
        killed = supervised_stack.services["worker_svc"]
        supervised_stack.kill_service("worker_svc")
        assert is_serving(supervised_stack.address("api_svc")) and is_serving(supervised_stack.address("auth_svc"))
        wait_until(
            lambda: supervising.supervisor.restarts["worker_svc"] == 1, "the worker was not restarted", timeout=60
        )
        assert supervised_stack.services["worker_svc"] is not killed
        assert is_serving(supervised_stack.address("worker_svc"))
        assert any(line.startswith("worker_svc exited (code -9); restarting it in") for line in supervising.logs)
        assert _completes(supervised_stack, images).status == task_pb2.TASK_STATUS_COMPLETED
        assert all(count == 0 for name, count in supervising.supervisor.restarts.items() if name != "worker_svc")


def test_a_killed_task_store_server_is_restarted(supervised_stack: Stack, images: ImageServer) -> None:
    ferretdb = supervised_stack.infra.ferretdb
    with _Supervising(supervised_stack) as supervising:
        assert ferretdb.process is not None and ferretdb.process.pid is not None
        os.killpg(ferretdb.process.pid, signal.SIGKILL)
        wait_until(lambda: supervising.supervisor.restarts["ferretdb"] == 1, "FerretDB was not restarted", timeout=60)
        assert any(line.startswith("ferretdb exited (code -9)") for line in supervising.logs)
        assert _completes(supervised_stack, images).status == task_pb2.TASK_STATUS_COMPLETED
