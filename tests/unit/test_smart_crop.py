"""`gravity: smart` keeps the interesting part of an image whose subject is off-centre."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from common.operations import Crop, Gravity, OutputFormat, OutputSpec, Rotate
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
