"""`make run`'s supervisor on a real stack: a process killed with SIGKILL (a worker OOM-killed
by a hostile image, a crashed FerretDB) is started again while the rest keeps serving."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator

import pytest
from pixelflow.v1 import task_pb2

from infra.stack import Stack, is_serving
from infra.supervisor import RestartPolicy, Supervisor
from tests.conftest import TEST_ENVIRONMENT, run_task_as_new_user, running_stack, wait_until
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
    return run_task_as_new_user(stack, task_pb2.CreateTaskRequest(source_url=images.url("/small.png")))


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
