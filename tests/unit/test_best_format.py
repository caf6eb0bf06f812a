"""Output format `best`: every candidate is encoded (each stopping once it passes the smallest so
far) and the smallest is kept; the result names the format chosen."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tasks.failures import FailureCode
from tasks.operations import OutputFormat, OutputSpec
from worker_svc.imaging import ImageError, ImageLimits, process
from worker_svc.imaging.encode import best_candidates, encode

pytestmark = pytest.mark.unit


def photo_like(mode: str = "RGB") -> Image.Image:
    """Smooth gradients with mild noise: what lossy formats are for."""
    y, x = np.mgrid[0:240, 0:320]
    base = np.stack([x * 255 // 320, y * 255 // 240, (x + y) * 255 // 560], axis=2).astype(np.int16)
    noisy = base + np.random.default_rng(2).integers(-6, 7, base.shape)
    image = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
    if mode == "RGBA":
        image.putalpha(Image.fromarray((x * 255 // 320).astype(np.uint8)))
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_candidates_follow_what_the_image_needs() -> None:
    assert best_candidates(photo_like(), OutputSpec()) == [OutputFormat.AVIF, OutputFormat.WEBP, OutputFormat.JPEG]
    assert best_candidates(photo_like("RGBA"), OutputSpec())[-1] is OutputFormat.PNG
    flat = Image.new("RGB", (64, 64), (200, 30, 30))
    assert best_candidates(flat, OutputSpec())[-1] is OutputFormat.PNG
    lossless = best_candidates(photo_like(), OutputSpec(lossless=True))
    assert lossless == [OutputFormat.WEBP, OutputFormat.AVIF, OutputFormat.PNG]


@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
@pytest.mark.parametrize("lossless", [False, True])
def test_best_is_the_smallest_candidate_and_says_which(mode: str, lossless: bool) -> None:
    image = photo_like(mode)
    spec = OutputSpec(format=OutputFormat.BEST, quality=0 if lossless else 70, lossless=lossless)
    result = process(png(image), [], spec)
    sizes = {
        fmt: len(
            encode(image, fmt, OutputSpec(format=fmt, quality=spec.quality, lossless=lossless), None, max_bytes=2**30)
        )
        for fmt in best_candidates(image, spec)
    }
    assert result.format is min(sizes, key=lambda fmt: sizes[fmt])
    assert len(result.data) == sizes[result.format]
    assert result.content_type == f"image/{result.format.value}"
    decoded = Image.open(io.BytesIO(result.data))
    assert decoded.format == result.format.value.upper() and decoded.size == image.size
    if mode == "RGBA":
        assert "A" in decoded.getbands()  # every candidate for an image with alpha keeps it


def test_best_past_the_result_limit_is_output_too_large() -> None:

    with pytest.raises(ImageError) as caught:
        process(png(photo_like()), [], OutputSpec(format=OutputFormat.BEST), limits=ImageLimits(max_result_bytes=1024))
    assert caught.value.code is FailureCode.OUTPUT_TOO_LARGE
