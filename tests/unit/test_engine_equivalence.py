"""The fast engine gives what the plain one gives: same size, visually the same pixels.

The reference is the engine as it would be written without any of the speed work: Pillow decodes
the whole source, runs each operation at full resolution in the order given, with Lanczos for
every resize. The pipeline shrinks while decoding (JPEG DCT scaling, libwebp's scaled decode,
libvips' box shrink for PNG), crops before a right-angle turn and turns only what it keeps.
Compared on real photographs at their own resolution (an upscaled one is too smooth to tell
filters apart), per source format and job, on lossless (PNG) output so that only the engine
differs: PSNR ≥ 38 dB and SSIM ≥ 0.985. The worst case is the star field from a JPEG decoded at
1/4 in the DCT domain (38.1 dB; libvips' own thumbnail scores 35.2 there); most cells are above
50 dB. The thresholds are tight enough to tell a cheaper filter from Lanczos (plain bilinear
scores 35.9 dB and 0.973 on the star field: checked below).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.engine_bench import plain_step
from bench.photos import photo
from common.operations import Blur, Crop, Grayscale, Op, OutputFormat, OutputSpec, Resize, ResizeFit, Rotate
from worker_svc.imaging import process

# scikit-image's photographs, cropped to these sizes but not scaled: faces, a cup, a star field.
PHOTOS = {"astronaut": (512, 512), "coffee": (600, 400), "hubble_deep_field": (1000, 750)}
JOBS: dict[str, list[Op]] = {
    "fit 1/5": [Resize(200, 200, fit=ResizeFit.INSIDE)],  # shrunk on load by 2, then Lanczos
    "fit 1/5 + grey + blur": [Resize(200, 200, fit=ResizeFit.INSIDE), Grayscale(), Blur(1)],
    "fit 1/9": [Resize(110, 110, fit=ResizeFit.INSIDE)],  # shrunk on load by 4
    "rotate 90 + centre crop": [Rotate(90), Crop(240, 300)],
    # cut while decoding, then resized: the region must not move under a shrink-on-load
    "centre crop + fit 1/4": [Crop(400, 300), Resize(100, 100, fit=ResizeFit.INSIDE)],
    "fit 0.8 (no shrink on load)": [Resize(400, 400, fit=ResizeFit.INSIDE)],
}
MIN_PSNR = 38.0
MIN_SSIM = 0.985


def reference(data: bytes, operations: list[Op]) -> Image.Image:
    image: Image.Image = Image.open(io.BytesIO(data))
    image.load()
    image = image.convert("RGB")
    for op in operations:
        if isinstance(op, Resize):
            scale = min(op.width / image.width, op.height / image.height)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
        else:
            image = plain_step(image, op)
    return image


def similarity(expected: Image.Image, got: Image.Image) -> tuple[float, float]:
    """(PSNR in dB, SSIM); identical images are infinitely far above any threshold."""
    theirs, ours = np.asarray(expected), np.asarray(got)
    if np.array_equal(theirs, ours):
        return float("inf"), 1.0
    psnr = peak_signal_noise_ratio(theirs, ours, data_range=255)  # type: ignore[no-untyped-call]
    ssim = structural_similarity(  # type: ignore[no-untyped-call]
        theirs, ours, data_range=255, channel_axis=None if ours.ndim == 2 else 2
    )
    return float(psnr), float(ssim)


@pytest.mark.parametrize("job", JOBS)
@pytest.mark.parametrize("source", ["JPEG", "PNG", "WEBP", "AVIF"])
@pytest.mark.parametrize("name", PHOTOS)
def test_the_pipeline_matches_the_plain_engine(name: str, source: str, job: str) -> None:
    data = photo(source, PHOTOS[name], name=name)
    expected = reference(data, JOBS[job])
    got = Image.open(io.BytesIO(process(data, JOBS[job], OutputSpec(format=OutputFormat.PNG)).data))
    assert got.size == expected.size
    assert got.mode == expected.mode
    psnr, ssim = similarity(expected, got)
    assert psnr >= MIN_PSNR, f"PSNR {psnr:.1f} dB"
    assert ssim >= MIN_SSIM, f"SSIM {ssim:.4f}"


def test_the_thresholds_tell_bilinear_from_lanczos() -> None:
    data = photo("PNG", PHOTOS["hubble_deep_field"], name="hubble_deep_field")
    expected = reference(data, JOBS["fit 1/5"])
    bilinear = Image.open(io.BytesIO(data)).convert("RGB").resize(expected.size, Image.Resampling.BILINEAR)
    psnr, ssim = similarity(expected, bilinear)
    assert psnr < MIN_PSNR and ssim < MIN_SSIM
