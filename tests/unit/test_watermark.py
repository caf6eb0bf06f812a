"""The watermark operation: validated up front, placed, scaled and blended as asked, and the
worker's cache of watermark bytes bounded by size."""

from __future__ import annotations

import io
import math

import pytest
from PIL import Image
from pixelflow.v1 import task_pb2

from common.errors import InvalidArgument
from tasks.failures import FailureCode
from tasks.operations import Gravity, Op, OutputFormat, OutputSpec, Resize, Watermark, parse_operations
from tests.images import encoded
from worker_svc.byte_cache import BytesCache
from worker_svc.imaging import process
from worker_svc.imaging.errors import ImageError

pytestmark = pytest.mark.unit

MARK_ID = "0123456789abcdef0123456789abcdef"
BLUE = (0, 0, 255, 255)


def over(source: Image.Image, op: Watermark, mark: Image.Image | None = None) -> Image.Image:
    marks = {MARK_ID: encoded(mark or Image.new("RGBA", (20, 10), BLUE))}
    result = process(encoded(source), [op], OutputSpec(format=OutputFormat.PNG), watermarks=marks)
    return Image.open(io.BytesIO(result.data))


def white(size: tuple[int, int] = (200, 100), mode: str = "RGB") -> Image.Image:
    return Image.new(mode, size, 255 if mode == "L" else (255, 255, 255))


@pytest.mark.parametrize(
    ("position", "inside", "outside"),
    [
        (Gravity.SOUTH_EAST, (200 - 5 - 1, 100 - 5 - 1), (200 - 5 - 21, 100 - 5 - 1)),
        (Gravity.NORTH_WEST, (5, 5), (4, 4)),
        (Gravity.CENTER, (100, 50), (85, 50)),
        (Gravity.NORTH, (100, 5), (100, 16)),
    ],
)
def test_placed_against_the_edges_its_position_names(
    position: Gravity, inside: tuple[int, int], outside: tuple[int, int]
) -> None:
    result = over(white(), Watermark(MARK_ID, position=position, margin=5)).convert("RGB")
    assert result.size == (200, 100)
    assert result.getpixel(inside) == BLUE[:3]
    assert result.getpixel(outside) == (255, 255, 255)


def test_opacity_blends_and_scale_follows_the_width() -> None:
    result = over(white(), Watermark(MARK_ID, position=Gravity.NORTH_WEST, opacity=0.25, scale=0.5)).convert("RGB")
    # 20×10 scaled to half of 200 px: 100×50.
    assert result.getpixel((99, 49)) == (191, 191, 255)
    assert result.getpixel((101, 51)) == (255, 255, 255)


def test_a_watermark_larger_than_the_room_is_shrunk_into_it() -> None:
    result = over(white((60, 40)), Watermark(MARK_ID, position=Gravity.NORTH_WEST, margin=10, scale=1.0))
    rgb = result.convert("RGB")
    # 40 px of room across: the 20×10 mark becomes 40×20.
    assert rgb.getpixel((49, 29)) == BLUE[:3] and rgb.getpixel((51, 31)) == (255, 255, 255)


def test_a_coloured_watermark_on_a_grey_image_makes_it_colour_and_a_grey_one_keeps_it_grey() -> None:
    assert over(white(mode="L"), Watermark(MARK_ID)).mode == "RGB"
    grey = Image.new("RGBA", (20, 10), (40, 40, 40, 255))
    assert over(white(mode="L"), Watermark(MARK_ID), grey).mode == "L"


def test_transparent_parts_of_the_watermark_leave_the_image_alone() -> None:
    mark = Image.new("RGBA", (20, 10), (0, 0, 0, 0))
    mark.paste(BLUE, (0, 0, 10, 10))
    result = over(white(), Watermark(MARK_ID, position=Gravity.NORTH_WEST), mark).convert("RGB")
    assert result.getpixel((5, 5)) == BLUE[:3]
    assert result.getpixel((15, 5)) == (255, 255, 255)


def test_a_watermark_runs_after_the_steps_before_it() -> None:
    marks = {MARK_ID: encoded(Image.new("RGBA", (20, 10), BLUE))}
    operations: list[Op] = [Resize(100, 0), Watermark(MARK_ID, position=Gravity.SOUTH_EAST)]
    result = process(encoded(white()), operations, OutputSpec(format=OutputFormat.PNG), watermarks=marks)
    image = Image.open(io.BytesIO(result.data)).convert("RGB")
    assert image.size == (100, 50) and image.getpixel((99, 49)) == BLUE[:3]


def test_a_watermark_that_is_missing_or_not_an_image_fails_clearly() -> None:
    with pytest.raises(ImageError) as missing:
        process(encoded(white()), [Watermark(MARK_ID)], OutputSpec(), watermarks={})
    assert missing.value.code is FailureCode.INVALID_OPERATION
    with pytest.raises(ImageError) as broken:
        process(encoded(white()), [Watermark(MARK_ID)], OutputSpec(), watermarks={MARK_ID: b"not an image"})
    assert broken.value.code is FailureCode.UNSUPPORTED_IMAGE and "watermark" in broken.value.message
    with pytest.raises(ImageError) as huge:
        process(
            encoded(white()),
            [Watermark(MARK_ID)],
            OutputSpec(),
            watermarks={MARK_ID: encoded(Image.new("L", (2001, 2000)))},
        )
    assert huge.value.code is FailureCode.IMAGE_TOO_LARGE and "watermark" in huge.value.message


def parse(**fields: object) -> Watermark:
    [op] = parse_operations([task_pb2.Operation(watermark=task_pb2.Watermark(**fields))])  # type: ignore[arg-type]
    assert isinstance(op, Watermark)
    return op


def test_defaults_and_validation() -> None:
    assert parse(upload_id=MARK_ID) == Watermark(MARK_ID, Gravity.SOUTH_EAST, 0, 1.0, None)
    assert parse(upload_id=MARK_ID, position=task_pb2.GRAVITY_WEST, margin=8, opacity=0.4, scale=0.2) == Watermark(
        MARK_ID, Gravity.WEST, 8, 0.4, 0.2
    )
    cases: list[tuple[dict[str, object], str]] = [
        ({"upload_id": ""}, "upload_id"),
        ({"upload_id": "../" + MARK_ID[3:]}, "upload_id"),
        ({"upload_id": MARK_ID, "position": task_pb2.GRAVITY_SMART}, "position"),
        ({"upload_id": MARK_ID, "margin": 1001}, "margin"),
        ({"upload_id": MARK_ID, "opacity": 1.5}, "opacity"),
        ({"upload_id": MARK_ID, "opacity": -0.1}, "opacity"),
        ({"upload_id": MARK_ID, "opacity": math.nan}, "opacity"),
        ({"upload_id": MARK_ID, "scale": 2.0}, "scale"),
        ({"upload_id": MARK_ID, "scale": math.inf}, "scale"),
    ]
    for fields, field in cases:
        with pytest.raises(InvalidArgument) as refused:
            parse(**fields)
        assert refused.value.field == f"operations[0].watermark.{field}", fields


def test_the_byte_cache_keeps_the_recently_used_within_its_size() -> None:
    cache = BytesCache(10)
    cache.put("a", b"1234")
    cache.put("b", b"5678")
    assert cache.get("a") == b"1234"  # now the most recent
    cache.put("c", b"90ab")  # 12 bytes: the least recent (b) goes
    assert "b" not in cache and cache.get("a") == b"1234" and cache.get("c") == b"90ab"
    assert cache.size == 8
    cache.put("huge", b"x" * 11)  # larger than the whole cache: not kept, nothing evicted
    assert "huge" not in cache and cache.size == 8
