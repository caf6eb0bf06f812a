"""The engine's choices through the whole stack: output format `best` names the format it chose,
and crop `gravity: smart` is accepted by the contract and answered by the worker."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pixelflow.v1 import task_pb2

from infra.stack import Stack
from tests.conftest import run_task_as_new_user
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sources() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/photo.png", image_bytes(320, 240), "image/png")
    with server.running():
        yield server


def test_best_output_names_the_format_it_chose(stack: Stack, sources: ImageServer) -> None:
    request = task_pb2.CreateTaskRequest(
        source_url=sources.url("/photo.png"),
        output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_BEST, quality=70),
    )
    task = run_task_as_new_user(stack, request)
    assert task.status == task_pb2.TASK_STATUS_COMPLETED, task.error
    assert task.output.format == task_pb2.IMAGE_FORMAT_BEST
    assert task.result.format in (task_pb2.IMAGE_FORMAT_AVIF, task_pb2.IMAGE_FORMAT_WEBP, task_pb2.IMAGE_FORMAT_JPEG)


def test_a_smart_crop_runs_through_the_stack(stack: Stack, sources: ImageServer) -> None:
    crop = task_pb2.Crop(width=100, height=80, gravity=task_pb2.GRAVITY_SMART)
    request = task_pb2.CreateTaskRequest(
        source_url=sources.url("/photo.png"), operations=[task_pb2.Operation(crop=crop)]
    )
    task = run_task_as_new_user(stack, request)
    assert task.status == task_pb2.TASK_STATUS_COMPLETED, task.error
    assert (task.result.width, task.result.height) == (100, 80)
