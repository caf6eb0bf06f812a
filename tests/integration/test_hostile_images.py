"""Hostile images against the real worker: frame-count bombs are refused from their structure
(Pillow's own count of a 10 MB TIFF of 100 000 pages takes minutes, far past the deadline), and a
result the encoder would write past the result size limit fails the task with nothing stored."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterator

import numpy as np
import pytest
from PIL import Image
from pixelflow.v1 import task_pb2

from common.blobstore.keys import task_prefix
from infra.stack import Stack
from tests.conftest import MAX_RESULT_BYTES, blob_store_of, run_task_as_new_user
from tests.images import ImageServer, one_pixel_gif_frames, tiny_tiff_pages

pytestmark = pytest.mark.integration

MAX_FRAMES = 100  # PIXELFLOW_IMAGE_MAX_FRAMES' default, which the test stack uses


def _noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(11).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", compress_level=1)
    return out.getvalue()


@pytest.fixture(scope="module")
def hostile() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/pages.tiff", tiny_tiff_pages(100_000), "image/tiff")
    server.serve_bytes("/frames.gif", one_pixel_gif_frames(1_000_000), "image/gif")
    server.serve_bytes("/noise.png", _noise_png(1200), "image/png")
    with server.running():
        yield server


@pytest.mark.parametrize("path", ["/pages.tiff", "/frames.gif"])
def test_a_frame_count_bomb_fails_as_too_large(stack: Stack, hostile: ImageServer, path: str) -> None:
    task = run_task_as_new_user(stack, task_pb2.CreateTaskRequest(source_url=hostile.url(path)))
    assert task.status == task_pb2.TASK_STATUS_FAILED, task
    assert task.error.code == "IMAGE_TOO_LARGE", task.error
    assert f"more than {MAX_FRAMES} frames" in task.error.message


def test_a_result_past_the_size_limit_fails_and_stores_nothing(stack: Stack, hostile: ImageServer) -> None:
    # 1200² of noise upscaled to 2400² as TIFF: 17 MB that deflate cannot shrink, over 16 MiB.
    request = task_pb2.CreateTaskRequest(
        source_url=hostile.url("/noise.png"),
        operations=[task_pb2.Operation(resize=task_pb2.Resize(width=2400, height=2400, allow_upscale=True))],
        output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_TIFF),
    )
    task = run_task_as_new_user(stack, request)
    assert task.status == task_pb2.TASK_STATUS_FAILED, task
    assert task.error.code == "OUTPUT_TOO_LARGE", task.error
    assert f"{MAX_RESULT_BYTES / 1024 / 1024:.1f} MiB limit" in task.error.message

    async def stored() -> list[str]:
        blobs = blob_store_of(stack)
        try:
            return [found.key async for found in blobs.list(task_prefix(task.id))]
        finally:
            await blobs.close()

    assert asyncio.run(stored()) == []
