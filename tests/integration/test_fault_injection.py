"""kill -9 at each step of a task, on the real stack with two worker processes: the worker that
reaches the step dies with its image pool (common.failpoints), the other one (or the relay)
carries on; api_svc, which records the outcome, dies right after committing it. After each:
the task ends exactly once, COMPLETED, its attempts counted, nothing left PROCESSING, one
result (a dead attempt's stored blob is an orphan the sweep removes), and the result downloads
intact. The other faults (SIGSTOP past the lease, Kafka and the task store stopped, a
worker-killing source, compression bombs) are in test_resilience and test_hostile_sources."""

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

# The step, the process that reaches it, and the attempts the task ends with: a worker killed
# before the outcome is committed costs an attempt; api_svc killed after the final lock (it
# records every outcome: TaskLifecycleService) leaves an outcome that stands and is only made
# visible (settled) when it is back.
CASES = [
    ("worker.claimed", "worker_svc", 2),
    ("worker.fetched", "worker_svc", 2),
    ("worker.processed", "worker_svc", 2),
    ("worker.stored", "worker_svc", 2),
    ("task.final_locked", "api_svc", 1),
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


@pytest.mark.parametrize(("step", "service", "attempts"), CASES)
def test_a_process_killed_at_each_step_leaves_one_outcome_and_one_result(
    faulty_stack: Stack, images: ImageServer, step: str, service: str, attempts: int
) -> None:
    marker = faulty_stack.root / f"failpoint-{step}"
    faulty_stack.environment["PIXELFLOW_FAILPOINTS"] = f"{step}=kill-once:{marker}"
    faulty_stack.restart_service(service)
    extra = faulty_stack.add_worker()
    suspects = (
        [faulty_stack.services["worker_svc"], extra] if service == "worker_svc" else [faulty_stack.services[service]]
    )
    try:
        with grpc.insecure_channel(faulty_stack.address("auth_svc")) as channel:
            token = register_and_login(auth_pb2_grpc.AuthServiceStub(channel)).access_token
        with grpc.insecure_channel(faulty_stack.address("api_svc")) as channel:
            tasks = task_pb2_grpc.TaskServiceStub(channel)
            request = task_pb2.CreateTaskRequest(
                source_url=images.url("/photo.png"), operations=[task_pb2.Operation(grayscale=task_pb2.Grayscale())]
            )
            task = tasks.CreateTask(request, metadata=bearer(token))
            wait_until(marker.exists, f"no process reached {step}", timeout=30)
            wait_until(lambda: any(not process.running for process in suspects), f"{service} did not die", timeout=10)
            [killed] = [process for process in suspects if not process.running]
            assert killed.exit_code == -9
            if service == "api_svc":
                faulty_stack.restart_service("api_svc")  # its supervisor would (the marker keeps it alive now)

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
        faulty_stack.restart_service(service)
