"""`gravity: smart` keeps the interesting part of an image whose subject is off-centre."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from pixelflow.v1 import task_pb2

from common.errors import InvalidArgument
from tasks.operations import Crop, Gravity, OutputFormat, OutputSpec, Resize, ResizeFit, Rotate, parse_operations
from worker_svc.imaging import process
from worker_svc.imaging.geometry import box_around

pytestmark = pytest.mark.unit

SUBJECT = (300, 100, 390, 200)  # left, top, right, bottom: well right of centre


def off_centre(mode: str = "RGB") -> bytes:
    """A flat grey 400×300 scene with a busy, saturated subject near the right edge."""
    pixels = np.full((300, 400, 3), 128, np.uint8)
    left, top, right, bottom = SUBJECT
    pixels[top:bottom, left:right] = np.random.default_rng(1).integers(0, 256, (bottom - top, right - left, 3))
    pixels[top + 20 : bottom - 20, left + 10 : right - 10, 0] = 235
    out = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(out, "PNG")
    return out.getvalue()


def subject_share(result: bytes) -> float:
    """How much of the result is the busy subject (the grey background has no variance)."""
    pixels = np.asarray(Image.open(io.BytesIO(result)).convert("RGB")).astype(int)
    return float((np.abs(pixels - 128).sum(axis=2) > 0).mean())


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_a_smart_crop_keeps_the_subject_a_centred_one_cuts_it(mode: str) -> None:
    spec = OutputSpec(format=OutputFormat.PNG)
    smart = process(off_centre(mode), [Crop(150, 150, gravity=Gravity.SMART)], spec)
    centred = process(off_centre(mode), [Crop(150, 150, gravity=Gravity.CENTER)], spec)
    assert (smart.width, smart.height) == (centred.width, centred.height) == (150, 150)
    assert subject_share(smart.data) > 0.35  # the 90×100 subject fills 40% of a 150² box
    assert subject_share(centred.data) < 0.05


def test_a_smart_crop_after_a_turn_looks_at_the_turned_image() -> None:
    result = process(
        off_centre(), [Rotate(90), Crop(150, 150, gravity=Gravity.SMART)], OutputSpec(format=OutputFormat.PNG)
    )
    assert (result.width, result.height) == (150, 150) and subject_share(result.data) > 0.35


def test_a_smart_crop_larger_than_the_image_is_the_image() -> None:
    result = process(off_centre(), [Crop(1000, 1000, gravity=Gravity.SMART)], OutputSpec(format=OutputFormat.PNG))
    assert (result.width, result.height) == (400, 300)


@pytest.mark.parametrize(
    ("focus", "expected"),
    [((200, 150), (125, 75, 275, 225)), ((0, 0), (0, 0, 150, 150)), ((399, 299), (250, 150, 400, 300))],
)
def test_the_box_is_centred_on_the_focus_as_far_as_the_image_allows(
    focus: tuple[int, int], expected: tuple[int, int, int, int]
) -> None:
    assert box_around(focus, (150, 150), (400, 300)) == expected


def test_a_cover_resize_keeps_what_its_gravity_says() -> None:
    spec = OutputSpec(format=OutputFormat.PNG)
    # 400×300 covered into 150×150 scales to 200×150 and cuts 50 px of width: the subject sits in
    # the right quarter, so only a crop that keeps the right side shows it.
    smart = process(off_centre(), [Resize(150, 150, fit=ResizeFit.COVER, gravity=Gravity.SMART)], spec)
    east = process(off_centre(), [Resize(150, 150, fit=ResizeFit.COVER, gravity=Gravity.EAST)], spec)
    west = process(off_centre(), [Resize(150, 150, fit=ResizeFit.COVER, gravity=Gravity.WEST)], spec)
    assert (smart.width, smart.height) == (east.width, east.height) == (150, 150)
    assert subject_share(smart.data) == pytest.approx(subject_share(east.data), abs=0.02)
    assert subject_share(east.data) > 2 * subject_share(west.data)


def test_gravity_on_a_resize_other_than_cover_is_refused() -> None:
    operation = task_pb2.Operation(
        resize=task_pb2.Resize(width=10, height=10, fit=task_pb2.RESIZE_FIT_CONTAIN, gravity=task_pb2.GRAVITY_SMART)
    )
    with pytest.raises(InvalidArgument) as caught:
        parse_operations([operation])
    assert caught.value.violations[0][::2] == ("operations[0].resize", "resize.gravity_needs_cover")
    assert "COVER only" in str(caught.value)
    cover = operation.resize.__class__(
        width=10, height=10, fit=task_pb2.RESIZE_FIT_COVER, gravity=task_pb2.GRAVITY_SMART
    )
    assert parse_operations([task_pb2.Operation(resize=cover)])[0] == Resize(
        10, 10, fit=ResizeFit.COVER, gravity=Gravity.SMART
    )
