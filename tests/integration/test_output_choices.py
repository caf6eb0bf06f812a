"""The engine's choices through the whole stack: output format `best` names the format it chose,
crop `gravity: smart` is accepted by the contract and answered by the worker, and colours are
converted to sRGB unless `keep_color_profile` asks for the source's profile, and an animation
stays one."""

from __future__ import annotations

import io
from collections.abc import Iterator

import pytest
import pyvips  # type: ignore[import-untyped]
from PIL import Image
from pixelflow.v1 import task_pb2

from common.blobstore.keys import task_prefix
from infra.stack import Stack
from tests.conftest import result_blobs, run_task_as_new_user
from tests.images import ImageServer, image_bytes

# One sRGB colour, stored as Display P3 pixels with libvips' P3 profile attached.
SRGB_COLOUR = (200, 100, 50)
_P3 = pyvips.Image.black(32, 32, bands=3).new_from_image(list(SRGB_COLOUR)).cast("uchar").copy(interpretation="srgb")
P3_SOURCE = _P3.icc_transform("p3", input_profile="srgb", intent="relative")


def _animated_gif() -> bytes:
    frames = [Image.new("RGB", (90, 60), colour) for colour in ((200, 0, 0), (0, 200, 0), (0, 0, 200))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buffer.getvalue()


ANIMATED_GIF = _animated_gif()

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def sources() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/photo.png", image_bytes(320, 240), "image/png")
    server.serve_bytes("/p3.png", bytes(P3_SOURCE.pngsave_buffer()), "image/png")
    server.serve_bytes("/animated.gif", ANIMATED_GIF, "image/gif")
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


@pytest.mark.parametrize("keep", [False, True], ids=["converted to sRGB", "profile kept"])
def test_colours_are_srgb_unless_the_source_profile_is_kept(stack: Stack, sources: ImageServer, keep: bool) -> None:
    request = task_pb2.CreateTaskRequest(
        source_url=sources.url("/p3.png"),
        output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_PNG, keep_color_profile=keep),
    )
    task = run_task_as_new_user(stack, request)
    assert task.status == task_pb2.TASK_STATUS_COMPLETED, task.error
    assert task.output.keep_color_profile is keep
    [name] = result_blobs(stack, task.id)
    with Image.open(stack.blob_dir / task_prefix(task.id) / name) as result:
        pixel = result.convert("RGB").getpixel((16, 16))
        profile = result.info.get("icc_profile")
    assert isinstance(pixel, tuple)
    if keep:
        assert pixel == tuple(int(value) for value in P3_SOURCE(16, 16))
        assert profile == P3_SOURCE.get("icc-profile-data")
    else:
        assert max(abs(got - want) for got, want in zip(pixel, SRGB_COLOUR, strict=True)) <= 2
        assert profile is None


@pytest.mark.parametrize("first_frame_only", [False, True], ids=["animated", "first frame only"])
def test_an_animated_gif_stays_animated_unless_asked(
    stack: Stack, sources: ImageServer, first_frame_only: bool
) -> None:
    resize = task_pb2.Operation(resize=task_pb2.Resize(width=45, height=30))
    request = task_pb2.CreateTaskRequest(
        source_url=sources.url("/animated.gif"),
        operations=[resize],
        output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_WEBP, first_frame_only=first_frame_only),
    )
    task = run_task_as_new_user(stack, request)
    assert task.status == task_pb2.TASK_STATUS_COMPLETED, task.error
    [name] = result_blobs(stack, task.id)
    with Image.open(stack.blob_dir / task_prefix(task.id) / name) as result:
        assert result.size == (45, 30)
        assert getattr(result, "n_frames", 1) == (1 if first_frame_only else 3)
