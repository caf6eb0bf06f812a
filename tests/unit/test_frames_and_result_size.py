"""Frames are counted up to the limit only (Pillow's `n_frames` walks them all: a 10 MB TIFF of
100 000 pages took four minutes), and the encoder stops at the result size limit."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tasks.failures import FailureCode
from tasks.operations import OutputFormat, OutputSpec
from tests.images import one_pixel_gif_frames, tiny_tiff_pages
from worker_svc.imaging import ImageError, ImageLimits, process
from worker_svc.imaging.frames import count_frames
from worker_svc.imaging.sniff import SourceFormat, sniff


def pillow_animation(fmt: str, frames: int, **options: object) -> bytes:
    images = [Image.new("RGB", (12, 9), (index * 2, 255 - index * 2, 7)) for index in range(frames)]
    out = io.BytesIO()
    images[0].save(out, fmt, save_all=True, append_images=images[1:], **options)
    return out.getvalue()


def pillow_count(data: bytes) -> int:
    return int(getattr(Image.open(io.BytesIO(data)), "n_frames", 1))


def frames(data: bytes, limit: int = 100) -> int:
    image = Image.open(io.BytesIO(data))
    return count_frames(data, sniff(data), image, limit)


@pytest.mark.parametrize("count", [1, 2, 7, 100])
@pytest.mark.parametrize(
    ("fmt", "options"),
    [("GIF", {"duration": 40}), ("TIFF", {}), ("WEBP", {"duration": 40, "lossless": True}), ("PNG", {})],
)
def test_the_count_agrees_with_pillow_on_files_pillow_writes(fmt: str, options: dict[str, object], count: int) -> None:
    data = pillow_animation(fmt, count, **options)
    assert frames(data) == pillow_count(data) == count


def test_hand_built_tiffs_agree_with_pillow_in_both_byte_orders() -> None:
    for order in ("<", ">"):
        data = tiny_tiff_pages(9, order)
        assert frames(data) == pillow_count(data) == 9


def test_counting_stops_past_the_limit_whatever_the_file_claims() -> None:
    assert frames(one_pixel_gif_frames(1_000_000), limit=100) == 101
    assert frames(tiny_tiff_pages(200_000), limit=100) == 101
    assert frames(one_pixel_gif_frames(100), limit=100) == 100


def test_a_tiff_whose_pages_loop_counts_each_page_once() -> None:
    assert frames(tiny_tiff_pages(5, loop=True)) == 5


def test_truncated_structures_count_what_is_there() -> None:
    gif = one_pixel_gif_frames(10)
    assert frames(gif[: len(gif) // 2]) in range(1, 10)
    assert count_frames(b"GIF89a", SourceFormat.GIF, Image.new("P", (1, 1)), 100) == 1
    tiff = tiny_tiff_pages(10)
    assert count_frames(tiff[:200], SourceFormat.TIFF, Image.new("L", (1, 1)), 100) in range(1, 10)


def test_a_frame_count_bomb_is_refused_before_decoding() -> None:
    with pytest.raises(ImageError) as caught:
        process(tiny_tiff_pages(100_000), [], OutputSpec(format=OutputFormat.PNG), limits=ImageLimits(max_frames=100))
    assert caught.value.code is FailureCode.IMAGE_TOO_LARGE
    assert "more than 100 frames" in caught.value.message


def noise_png(side: int) -> bytes:
    pixels = np.random.default_rng(3).integers(0, 256, (side, side, 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, "PNG", compress_level=0)
    return out.getvalue()


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_a_result_over_the_size_limit_fails_with_output_too_large(fmt: OutputFormat) -> None:
    source = noise_png(256)  # 196 KiB of pixels that do not compress
    limits = ImageLimits(max_result_bytes=16 * 1024)
    spec = OutputSpec(
        format=fmt, quality=100 if fmt in (OutputFormat.JPEG, OutputFormat.WEBP, OutputFormat.AVIF) else 0
    )
    with pytest.raises(ImageError) as caught:
        process(source, [], spec, limits=limits)
    assert caught.value.code is FailureCode.OUTPUT_TOO_LARGE
    assert "16.0 KiB limit" in caught.value.message
    # The same image fits when the limit allows it.
    assert len(process(source, [], spec, limits=ImageLimits()).data) > 16 * 1024
