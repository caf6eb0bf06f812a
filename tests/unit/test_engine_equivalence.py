"""The fast engine gives what the plain one gives: same size, visually the same pixels.

The reference is the plain engine (bench.engine_quality): Pillow decodes the whole source, runs
each operation at full resolution in the order given, with Lanczos for every resize. The pipeline
shrinks while decoding (JPEG DCT scaling, libwebp's scaled decode, libvips' box shrink for PNG),
runs turns, flips and grey after a resize, crops before a right-angle turn and turns only what it
keeps. Compared on real photographs at their own resolution (an upscaled one is too smooth to tell
filters apart), per source format and job, on lossless (PNG) output so that only the engine
differs: PSNR ≥ 38 dB and SSIM ≥ 0.985. The worst case is the star field from a JPEG decoded at
1/4 in the DCT domain (38.8 dB; libvips' own thumbnail scores 37.9 there); most cells are above
50 dB. The thresholds are tight enough to tell a cheaper filter from Lanczos (plain bilinear
scores 35.9 dB and 0.973 on the star field: checked below).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from bench.engine_quality import MIN_PSNR, MIN_SSIM, NATIVE_PHOTOS, plain_engine, similarity
from bench.photos import photo
from tasks.operations import (
    Blur,
    Crop,
    Flip,
    FlipDirection,
    Grayscale,
    Op,
    OutputFormat,
    OutputSpec,
    Resize,
    ResizeFit,
    Rotate,
)
from worker_svc.imaging import process

JOBS: dict[str, list[Op]] = {
    "fit 1/5": [Resize(200, 200, fit=ResizeFit.INSIDE)],  # shrunk on load by 2, then Lanczos
    "fit 1/5 + grey + blur": [Resize(200, 200, fit=ResizeFit.INSIDE), Grayscale(), Blur(1)],
    "fit 1/9": [Resize(110, 110, fit=ResizeFit.INSIDE)],  # shrunk on load by 4
    # shrunk on load: the turn, flip and grey run after the resize, on the small image
    "rotate 90 + fit 1/5": [Rotate(90), Resize(200, 200, fit=ResizeFit.INSIDE)],
    "flip + grey + rotate 180 + cover 1/4": [
        Flip(FlipDirection.HORIZONTAL),
        Grayscale(),
        Rotate(180),
        Resize(150, 100, fit=ResizeFit.COVER),
    ],
    "rotate 90 + centre crop": [Rotate(90), Crop(240, 300)],
    # cut while decoding, then resized: the region must not move under a shrink-on-load
    "centre crop + fit 1/4": [Crop(400, 300), Resize(100, 100, fit=ResizeFit.INSIDE)],
    "fit 0.8 (no shrink on load)": [Resize(400, 400, fit=ResizeFit.INSIDE)],
}


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("source", ["JPEG", "PNG", "WEBP", "AVIF"])
@pytest.mark.parametrize("name", NATIVE_PHOTOS)
def test_the_pipeline_matches_the_plain_engine(name: str, source: str, job: str) -> None:
    data = photo(source, NATIVE_PHOTOS[name], name=name)
    expected = plain_engine(data, JOBS[job])
    got = Image.open(io.BytesIO(process(data, JOBS[job], OutputSpec(format=OutputFormat.PNG)).data))
    assert got.size == expected.size
    assert got.mode == expected.mode
    psnr, ssim = similarity(expected, got)
    assert psnr >= MIN_PSNR, f"PSNR {psnr:.1f} dB"
    assert ssim >= MIN_SSIM, f"SSIM {ssim:.4f}"


def test_the_thresholds_tell_bilinear_from_lanczos() -> None:
    data = photo("PNG", NATIVE_PHOTOS["hubble_deep_field"], name="hubble_deep_field")
    expected = plain_engine(data, JOBS["fit 1/5"])
    bilinear = Image.open(io.BytesIO(data)).convert("RGB").resize(expected.size, Image.Resampling.BILINEAR)
    psnr, ssim = similarity(expected, bilinear)
    assert psnr < MIN_PSNR and ssim < MIN_SSIM
