"""WebP and AVIF encoder settings: speed against size at equal quality, so the worker's defaults
are chosen by measurement.

Run with `python -m bench.encoder_bench` (about five minutes). The images are three real
photographs scikit-image ships (a cat on a carpet, an astronaut, a cup of coffee) resized to
1600×1200, a typical delivered size; one thread. Each effort level (WebP's method, AVIF's speed)
is run at the quality setting that reaches the mean PSNR the worker's default reaches (the lowest
such setting, found by bisection), then timed: the median of N runs of each photograph, summed,
and the summed size of the three. Equal quality, so the sizes compare directly.
"""

from __future__ import annotations

import io
import statistics
import time
from typing import Any

import numpy as np
import typer
from PIL import Image
from rich.console import Console
from rich.table import Table
from skimage import data

# (format, option naming the effort, the efforts compared, the worker's default effort and quality)
EFFORTS: list[tuple[str, str, tuple[int, ...], int, int]] = [
    ("WEBP", "method", (0, 2, 3, 4, 6), 4, 80),
    ("AVIF", "speed", (6, 8, 9, 10), 8, 60),
]


def psnr(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255**2 / mse) if mse else float("inf")


def photographs() -> list[Image.Image]:
    images = (data.chelsea(), data.astronaut(), data.coffee())  # type: ignore[no-untyped-call]
    return [Image.fromarray(pixels).convert("RGB").resize((1600, 1200), Image.Resampling.LANCZOS) for pixels in images]


def encode_ms(image: Image.Image, fmt: str, options: dict[str, Any], rounds: int) -> tuple[float, bytes]:
    samples, encoded = [], b""
    for _ in range(rounds + 1):  # the first is a warm-up
        out = io.BytesIO()
        started = time.perf_counter()
        image.save(out, fmt, **options)
        samples.append((time.perf_counter() - started) * 1000)
        encoded = out.getvalue()
    return statistics.median(samples[1:]), encoded


def mean_psnr(sources: list[Image.Image], fmt: str, options: dict[str, Any]) -> tuple[float, int]:
    """The mean PSNR of the three encoded with `options`, and their summed size in bytes."""
    scores, total = [], 0
    for image in sources:
        out = io.BytesIO()
        image.save(out, fmt, **options)
        total += out.tell()
        decoded = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
        scores.append(psnr(np.asarray(image), np.asarray(decoded)))
    return statistics.mean(scores), total


def quality_for(sources: list[Image.Image], fmt: str, effort: dict[str, int], target: float) -> int:
    """The lowest quality setting whose mean PSNR reaches `target` (PSNR rises with it)."""
    low, high = 1, 100
    while low < high:
        middle = (low + high) // 2
        if mean_psnr(sources, fmt, {**effort, "quality": middle})[0] >= target:
            high = middle
        else:
            low = middle + 1
    return low


def main(rounds: int = typer.Option(3, help="timed encodes per setting and photograph")) -> None:
    sources = photographs()
    title = "3 photographs at 1600×1200, each effort at the quality that reaches the default's PSNR (summed)"
    table = Table("format", "effort", "quality", "ms", "img/s per core", "KiB", "mean PSNR dB", title=title)
    for fmt, knob, efforts, default, default_quality in EFFORTS:
        target, _ = mean_psnr(sources, fmt, {knob: default, "quality": default_quality})
        for effort in efforts:
            quality = default_quality if effort == default else quality_for(sources, fmt, {knob: effort}, target)
            options = {knob: effort, "quality": quality}
            total_ms = sum(encode_ms(image, fmt, options, rounds)[0] for image in sources)
            score, total_bytes = mean_psnr(sources, fmt, options)
            used = " (used)" if effort == default else ""
            table.add_row(
                fmt,
                f"{knob} {effort}{used}",
                str(quality),
                f"{total_ms:.0f}",
                f"{len(sources) * 1000 / total_ms:.1f}",
                f"{total_bytes / 1024:.0f}",
                f"{score:.2f}",
            )
    Console(width=120).print(table)


if __name__ == "__main__":
    typer.run(main)
