"""WebP and AVIF encoder settings: speed against size at the same quality setting, with the
PSNR each reaches, so the worker's defaults are chosen by measurement.

Run with `python -m bench.encoder_bench` (about four minutes). The images are three real
photographs scikit-image ships (a cat on a carpet, an astronaut, a cup of coffee) resized to
1600×1200, a typical delivered size; one thread; per setting, the median time of N runs of each
photograph, summed, and the summed size and mean PSNR of the three.
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

SETTINGS: list[tuple[str, str, dict[str, Any]]] = [
    *(("WEBP", f"method {method}", {"quality": 80, "method": method}) for method in (0, 2, 4, 6)),
    *(("AVIF", f"speed {speed}", {"quality": 60, "speed": speed}) for speed in (4, 6, 8, 10)),
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


def main(rounds: int = typer.Option(3, help="timed encodes per setting and photograph")) -> None:
    sources = photographs()
    title = "3 photographs at 1600×1200 (ms and KiB summed over the three)"
    table = Table("format", "setting", "ms", "img/s per core", "KiB", "mean PSNR dB", title=title)
    for fmt, name, options in SETTINGS:
        total_ms, total_bytes, scores = 0.0, 0, []
        for image in sources:
            ms, encoded = encode_ms(image, fmt, options, rounds)
            total_ms += ms
            total_bytes += len(encoded)
            scores.append(psnr(np.asarray(image), np.asarray(Image.open(io.BytesIO(encoded)).convert("RGB"))))
        rate = len(sources) * 1000 / total_ms
        psnr_text = f"{statistics.mean(scores):.2f}"
        table.add_row(fmt, name, f"{total_ms:.0f}", f"{rate:.1f}", f"{total_bytes / 1024:.0f}", psnr_text)
    Console(width=120).print(table)


if __name__ == "__main__":
    typer.run(main)
