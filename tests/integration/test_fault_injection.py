"""kill -9 at each step of a task, on the real stack with two worker processes: the worker that
reaches the step dies with its image pool (common.failpoints), the other one (or the relay)
carries on. After each: the task ends exactly once, COMPLETED, its attempts counted, nothing
left PROCESSING, one result (a dead attempt's stored blob is an orphan the sweep removes), and
the result downloads intact. The other faults (SIGSTOP past the lease, Kafka and the task store
stopped, a worker-killing source, compression bombs) are in test_resilience and
test_hostile_sources."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta

import grpc
import pytest
from pixelflow.v1 import auth_pb2_grpc, task_pb2, task_pb2_grpc

from infra.stack import Stack
from tests.conftest import (
    TEST_ENVIRONMENT,
    bearer,
    register_and_login,
    result_blobs,
    result_bytes,
    running_stack,
    sweep_orphans,
    wait_until,
)
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration

# The step, and the attempts the task ends with: a kill before the outcome is committed costs
# an attempt; after the final lock the outcome stands and is only made visible (settled).
CASES = [
    ("worker.claimed", 2),
    ("worker.fetched", 2),
    ("worker.processed", 2),
    ("worker.stored", 2),
    ("task.final_locked", 1),
]


@pytest.fixture(scope="module")
def faulty_stack() -> Iterator[Stack]:
    with running_stack("faults", {**TEST_ENVIRONMENT, "PIXELFLOW_OUTBOX_INTERVAL_SECONDS": "1"}) as stack:
        yield stack


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/photo.png", image_bytes(90, 60), "image/png")
    with server.running():
        yield server


@pytest.mark.parametrize(("step", "attempts"), CASES)
def test_a_worker_killed_at_each_step_leaves_one_outcome_and_one_result(
    faulty_stack: Stack, images: ImageServer, step: str, attempts: int
) -> None:
    marker = faulty_stack.root / f"failpoint-{step}"
    faulty_stack.environment["PIXELFLOW_FAILPOINTS"] = f"{step}=kill-once:{marker}"
    faulty_stack.restart_service("worker_svc")
    extra = faulty_stack.add_worker()
    workers = [faulty_stack.services["worker_svc"], extra]
    try:
        with grpc.insecure_channel(faulty_stack.address("auth_svc")) as channel:
            token = register_and_login(auth_pb2_grpc.AuthServiceStub(channel)).access_token
        with grpc.insecure_channel(faulty_stack.address("api_svc")) as channel:
            tasks = task_pb2_grpc.TaskServiceStub(channel)
            request = task_pb2.CreateTaskRequest(
                source_url=images.url("/photo.png"), operations=[task_pb2.Operation(grayscale=task_pb2.Grayscale())]
            )
            task = tasks.CreateTask(request, metadata=bearer(token))
            wait_until(marker.exists, f"no worker reached {step}", timeout=30)
            wait_until(lambda: any(not worker.running for worker in workers), "the worker did not die", timeout=10)
            [killed] = [worker for worker in workers if not worker.running]
            assert killed.exit_code == -9

            watch = tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task.id), metadata=bearer(token), timeout=90)
            final = list(watch)[-1].task
            assert final.status == task_pb2.TASK_STATUS_COMPLETED, final
            assert final.attempts == attempts, final
            if step == "worker.stored":
                assert result_blobs(faulty_stack, task.id) == ["result-1", "result-2"]  # the dead attempt's
                sweep_orphans(faulty_stack, timedelta(0))
            assert result_blobs(faulty_stack, task.id) == [f"result-{attempts}"]
            _, data = result_bytes(tasks, task.id, bearer(token))
            assert hashlib.sha256(data).hexdigest() == final.result.sha256
    finally:
        del faulty_stack.environment["PIXELFLOW_FAILPOINTS"]
        extra.stop()
        faulty_stack.services.pop(extra.name, None)
        faulty_stack.restart_service("worker_svc")
