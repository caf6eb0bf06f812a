"""A right-angle turn followed by a crop runs as crop-then-turn (the box mapped back through the
turn), and a first crop (or first turn + crop) is cut while decoding: pixel for pixel what
running the steps one by one gives."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tasks.operations import Crop, Flip, FlipDirection, Gravity, Op, OutputFormat, OutputSpec, Rotate
from worker_svc.imaging import REGISTRY, process
from worker_svc.imaging.geometry import Size
from worker_svc.imaging.steps import StepContext

pytestmark = pytest.mark.unit


def noise(size: Size, mode: str) -> Image.Image:
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    pixels = np.random.default_rng(5).integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    return Image.fromarray(pixels.squeeze(), mode)


def one_by_one(image: Image.Image, operations: list[Op]) -> Image.Image:
    context = StepContext(output_has_alpha=True, planned_input=image.size)
    for op in operations:
        image = REGISTRY[op.kind].apply(image, op, context)
    return image


def through_the_pipeline(image: Image.Image, operations: list[Op], container: str = "PNG") -> Image.Image:
    source = io.BytesIO()
    image.save(source, container)
    result = process(source.getvalue(), operations, OutputSpec(format=OutputFormat.PNG))
    return Image.open(io.BytesIO(result.data))


CROPS = [
    Crop(40, 30),
    Crop(17, 61, gravity=Gravity.NORTH_EAST),
    Crop(33, 9, gravity=Gravity.SOUTH_WEST),
    Crop(5, 7, left=3, top=11),
    Crop(1000, 1000),  # larger than the image: clamped to it
]


@pytest.mark.parametrize("angle", [90, 180, 270, -90, 450])
@pytest.mark.parametrize("crop", CROPS, ids=str)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_crop_first_gives_the_same_pixels(angle: int, crop: Crop, mode: str) -> None:
    source = noise((97, 64), mode)  # odd and unequal sides: any off-by-one shows
    operations: list[Op] = [Rotate(angle), crop]
    expected = one_by_one(source, operations)
    got = through_the_pipeline(source, operations)
    assert got.size == expected.size
    assert np.array_equal(np.asarray(got.convert(mode)), np.asarray(expected))


@pytest.mark.parametrize("container", ["PNG", "TIFF"], ids=["cut by libvips", "cut by Pillow"])
@pytest.mark.parametrize(
    "operations",
    [
        [Crop(40, 30, gravity=Gravity.SOUTH_EAST)],
        [Crop(5, 7, left=3, top=11), Rotate(90)],
        [Rotate(270), Crop(17, 61, gravity=Gravity.NORTH_EAST), Flip(FlipDirection.VERTICAL)],
        [Flip(FlipDirection.HORIZONTAL), Rotate(90), Crop(33, 9)],  # not first: fused in the steps
    ],
    ids=["crop", "crop + turn", "turn + crop + flip", "flip + turn + crop"],
)
@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L"])
def test_a_first_crop_is_cut_while_decoding_with_the_same_pixels(
    container: str, operations: list[Op], mode: str
) -> None:
    source = noise((97, 64), mode)
    expected = one_by_one(source, operations)
    got = through_the_pipeline(source, operations, container)
    assert got.size == expected.size
    assert np.array_equal(np.asarray(got.convert(mode)), np.asarray(expected))
