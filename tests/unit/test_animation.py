"""Animated GIF and WebP keep their animation through the operations when the output can hold
one; the first frame otherwise, or when asked; frames × pixels are bounded."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tasks.failures import FailureCode
from tasks.operations import Crop, Gravity, Op, OutputFormat, OutputSpec, Resize, ResizeFit, Rotate
from worker_svc.imaging import process
from worker_svc.imaging.errors import ImageError
from worker_svc.imaging.limits import ImageLimits

pytestmark = pytest.mark.unit

COLOURS = [(220, 30, 30), (30, 200, 40), (40, 60, 220)]
DURATIONS = [50, 120, 200]


def animation(container: str, size: tuple[int, int] = (120, 80), *, transparent_corner: bool = False) -> bytes:
    frames = []
    for colour in COLOURS:
        frame = Image.new("RGBA", size, (*colour, 255))
        if transparent_corner:
            frame.paste((0, 0, 0, 0), (0, 0, 20, 20))
        frames.append(frame)
    buffer = io.BytesIO()
    options = {"lossless": True} if container == "WEBP" else {}
    frames[0].save(buffer, container, save_all=True, append_images=frames[1:], duration=DURATIONS, loop=0, **options)
    return buffer.getvalue()


def read_frames(data: bytes) -> tuple[Image.Image, list[tuple[int, ...]], list[int]]:
    image = Image.open(io.BytesIO(data))
    colours: list[tuple[int, ...]] = []
    durations: list[int] = []
    for index in range(getattr(image, "n_frames", 1)):
        image.seek(index)
        colours.append(pixel(image.convert("RGBA"), rgba_corner(image)))
        durations.append(image.info.get("duration", 0))
    return image, colours, durations


def rgba_corner(image: Image.Image) -> tuple[int, int]:
    return image.width - 3, image.height - 3


def pixel(image: Image.Image, at: tuple[int, int]) -> tuple[int, ...]:
    value = image.getpixel(at)
    assert isinstance(value, tuple)
    return value


def close(got: tuple[int, ...], want: tuple[int, ...]) -> bool:
    return all(abs(a - b) <= 4 for a, b in zip(got, want, strict=False))


@pytest.mark.parametrize("output", [OutputFormat.GIF, OutputFormat.WEBP])
@pytest.mark.parametrize("source", ["GIF", "WEBP"])
def test_an_animation_keeps_every_frame_through_the_operations(source: str, output: OutputFormat) -> None:
    operations: list[Op] = [Resize(60, 60, fit=ResizeFit.INSIDE), Rotate(90), Crop(30, 40, gravity=Gravity.SMART)]
    result = process(animation(source), operations, OutputSpec(format=output))
    image, colours, durations = read_frames(result.data)
    assert image.size == (30, 40) == (result.width, result.height)
    assert getattr(image, "n_frames", 1) == 3
    assert all(close(got, (*want, 255)) for got, want in zip(colours, COLOURS, strict=True)), colours
    assert durations == DURATIONS
    assert image.info.get("loop") == 0


@pytest.mark.parametrize("output", [OutputFormat.GIF, OutputFormat.WEBP])
def test_transparency_survives_in_every_frame(output: OutputFormat) -> None:
    result = process(animation("GIF", transparent_corner=True), [], OutputSpec(format=output))
    image = Image.open(io.BytesIO(result.data))
    for index in range(3):
        image.seek(index)
        rgba = image.convert("RGBA")
        assert pixel(rgba, (5, 5))[3] == 0
        assert pixel(rgba, (60, 40))[3] == 255


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (OutputSpec(format=OutputFormat.GIF, first_frame_only=True), "asked for"),
        (OutputSpec(format=OutputFormat.PNG), "PNG holds one frame"),
        (OutputSpec(format=OutputFormat.JPEG), "JPEG holds one frame"),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_the_first_frame_only_when_asked_or_when_the_output_has_one(spec: OutputSpec, reason: str) -> None:
    result = process(animation("GIF"), [Resize(60, 0)], spec)
    image, colours, _ = read_frames(result.data)
    assert getattr(image, "n_frames", 1) == 1, reason
    assert close(colours[0], (*COLOURS[0], 255))


def test_frames_times_pixels_are_bounded() -> None:
    limits = ImageLimits(max_pixels=2 * 120 * 80)  # three 120×80 frames are over it, two would not be
    with pytest.raises(ImageError) as raised:
        process(animation("GIF"), [], OutputSpec(format=OutputFormat.GIF), limits=limits)
    assert raised.value.code is FailureCode.OUTPUT_TOO_LARGE
    assert "first frame only" in raised.value.message
    shrunk = process(animation("GIF"), [Resize(60, 0)], OutputSpec(format=OutputFormat.GIF), limits=limits)
    assert getattr(Image.open(io.BytesIO(shrunk.data)), "n_frames", 1) == 3
