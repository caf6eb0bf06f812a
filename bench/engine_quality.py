"""What each configuration of the engine bench gives up for its speed: PSNR and SSIM against the
plain engine, on real photographs at their own resolution.

Run with `python -m bench.engine_quality` (also printed after `bench.engine_bench`'s table). The
plain engine is the one written without any speed work: Pillow decodes the whole source and runs
each operation at full resolution, in the order given, with Lanczos for every resize. It is also
the reference of tests/unit/test_engine_equivalence.py, which holds the pipeline to MIN_PSNR and
MIN_SSIM. The bench's own 12 MP sources are upscaled, too smooth to tell filters apart; these are
scikit-image's photographs cropped, not scaled.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pyvips  # type: ignore[import-untyped]
from PIL import Image, ImageFile, ImageFilter, ImageOps
from rich.console import Console
from rich.table import Table
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

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

# scikit-image's photographs, cropped to these sizes but not scaled: faces, a cup, a star field.
NATIVE_PHOTOS = {"astronaut": (512, 512), "coffee": (600, 400), "hubble_deep_field": (1000, 750)}
# What the pipeline is held to (tight enough to tell bilinear from Lanczos: the test checks it).
MIN_PSNR = 38.0
MIN_SSIM = 0.985


def plain_step(image: Image.Image, op: Op) -> Image.Image:
    """A grey, blur, turn, flip or centre crop the plain way: Pillow, at whatever size the image is
    (the bench's Pillow column uses it too)."""
    if isinstance(op, Grayscale):
        return image.convert("L")
    if isinstance(op, Blur):
        return image.filter(ImageFilter.GaussianBlur(op.sigma))
    if isinstance(op, Rotate):
        return image.rotate(-op.angle, expand=True)
    if isinstance(op, Flip):
        return ImageOps.mirror(image) if op.direction is FlipDirection.HORIZONTAL else ImageOps.flip(image)
    if isinstance(op, Crop):
        left, top = (image.width - op.width) // 2, (image.height - op.height) // 2
        return image.crop((left, top, left + op.width, top + op.height))
    raise ValueError(f"no plain {op.kind} here")


def plain_engine(data: bytes, operations: list[Op]) -> Image.Image:
    image: Image.Image = Image.open(io.BytesIO(data))
    image.load()
    image = image.convert("RGB")
    for op in operations:
        if isinstance(op, Resize):
            pick = max if op.fit is ResizeFit.COVER else min
            scale = pick(op.width / image.width, op.height / image.height)
            image = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
            if op.fit is ResizeFit.COVER:
                image = plain_step(image, Crop(op.width, op.height))
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


def _pixelflow(data: bytes, box: int, *, fast: bool = False) -> Image.Image:
    result = process(data, _fit(box), OutputSpec(format=OutputFormat.PNG), fast_shrink_on_load=fast)
    return Image.open(io.BytesIO(result.data))


def pillow_image(data: bytes, operations: list[Op]) -> Image.Image:
    """The bench's Pillow configuration: a first resize drafts in the DCT domain to ≥ 1× its
    box and then `thumbnail`s with Lanczos; the other steps run the plain way."""
    image: Image.Image = Image.open(io.BytesIO(data))
    if isinstance(first := operations[0], Resize) and isinstance(image, ImageFile.ImageFile):
        image.draft("RGB", (first.width, first.width * image.height // image.width))
    image.load()
    for op in operations:
        if isinstance(op, Resize):
            image = image.copy()
            image.thumbnail((op.width, op.height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        else:
            image = plain_step(image, op)
    return image


def vips_image(data: bytes, operations: list[Op]) -> pyvips.Image:
    """The bench's libvips configuration: `thumbnail_buffer` (shrink-on-load + Lanczos 3) for a
    first resize; demand-driven grey, blur, turn and centre crop after it."""
    if isinstance(first := operations[0], Resize):
        image = pyvips.Image.thumbnail_buffer(data, first.width, height=first.height)
        if any(isinstance(op, Rotate) for op in operations):
            image = image.copy_memory()  # a turn reads its input out of order; thumbnail's is sequential
    else:
        image = pyvips.Image.new_from_buffer(data, "")
    for op in operations:
        if isinstance(op, Grayscale):
            image = image.colourspace("b-w")
        elif isinstance(op, Blur):
            image = image.gaussblur(op.sigma)
        elif isinstance(op, Rotate):
            image = image.rot("d90")
        elif isinstance(op, Crop):
            image = image.crop((image.width - op.width) // 2, (image.height - op.height) // 2, op.width, op.height)
    return image


def _fit(box: int) -> list[Op]:
    return [Resize(box, box, fit=ResizeFit.INSIDE)]


def _libvips(data: bytes, box: int) -> Image.Image:
    image = vips_image(data, _fit(box))
    return Image.frombytes("RGB", (image.width, image.height), image.write_to_memory())


def _pillow(data: bytes, box: int) -> Image.Image:
    return pillow_image(data, _fit(box)).convert("RGB")


CONFIGURATIONS: dict[str, Callable[[bytes, int], Image.Image]] = {
    "PixelFlow": _pixelflow,
    "PixelFlow fast": lambda data, box: _pixelflow(data, box, fast=True),
    "libvips thumbnail": _libvips,
    "Pillow draft ≥ 1×": _pillow,
}
# Fits to about 1/5 and 1/9 of each side: JPEG shrinks on load by 2 and 4 (PixelFlow), 4 and 8.
FACTORS = (5, 9)


def quality_table(sources: tuple[str, ...] = ("JPEG", "WEBP")) -> Table:
    """Per source format and factor: each configuration's worst PSNR / SSIM over the photographs."""
    table = Table("source", "fit", *CONFIGURATIONS, title="worst PSNR dB / SSIM against the plain engine")
    for fmt in sources:
        for factor in FACTORS:
            worst: dict[str, tuple[float, float]] = {name: (float("inf"), 1.0) for name in CONFIGURATIONS}
            for name, size in NATIVE_PHOTOS.items():
                data = photo(fmt, size, name=name)
                box = max(size) // factor
                expected = plain_engine(data, [Resize(box, box, fit=ResizeFit.INSIDE)])
                for config, run in CONFIGURATIONS.items():
                    psnr, ssim = similarity(expected, run(data, box))
                    worst[config] = (min(worst[config][0], psnr), min(worst[config][1], ssim))
            table.add_row(fmt, f"1/{factor}", *(f"{psnr:.1f} / {ssim:.3f}" for psnr, ssim in worst.values()))
    return table


if __name__ == "__main__":
    Console(width=160).print(quality_table())
