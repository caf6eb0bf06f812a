"""Pillow or libvips for the worker? Medians of the same jobs through four engines.

Run with `python -m bench.engine_bench` (about a minute and a half on two cores). The sources
are a real photograph (scikit-image's bundled "chelsea") upscaled (bicubic) to 4000×3000 = 12 MP,
saved as JPEG q90 and PNG (bench.photos).

Engines:
- pillow-naive: decode in full, then the operations, then encode (what a first version does).
- pillow-draft: the same, with JPEG draft mode (DCT-domain 1/2, 1/4, 1/8 decode) before a resize.
- pyvips: `thumbnail_buffer` (libvips' shrink-on-load) and libvips operations; cache disabled.
- pipeline: `worker_svc.imaging.process`, what the worker runs (Pillow + draft + limits + metadata).
"""

from __future__ import annotations

import io
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated

import pyvips  # type: ignore[import-untyped]
import typer
from PIL import Image, ImageFile, ImageFilter
from PIL import __version__ as pillow_version
from rich.console import Console
from rich.table import Table

from bench.photos import photo
from common.operations import Blur, Crop, Grayscale, Op, OutputFormat, OutputSpec, Resize, ResizeFit, Rotate
from worker_svc.imaging import process

SIZE = (4000, 3000)
TARGET = 800


@dataclass(frozen=True)
class Job:
    name: str
    operations: list[Op]
    output: OutputFormat


FIT = Resize(TARGET, TARGET, fit=ResizeFit.INSIDE)
JOBS = [
    Job("fit 800 → JPEG q85", [FIT], OutputFormat.JPEG),
    Job("fit 800 → WebP q80", [FIT], OutputFormat.WEBP),
    Job(
        "800 + grey + blur σ2", [Resize(TARGET, TARGET, fit=ResizeFit.INSIDE), Grayscale(), Blur(2)], OutputFormat.JPEG
    ),
    Job("rotate 90 + crop 1000²", [Rotate(90), Crop(1000, 1000)], OutputFormat.JPEG),
]


def save(image: Image.Image, fmt: OutputFormat) -> bytes:
    buffer = io.BytesIO()
    if fmt is OutputFormat.WEBP:
        image.save(buffer, "WEBP", quality=80)
    else:
        image.convert("RGB").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def pillow(data: bytes, job: Job, *, draft: bool) -> bytes:
    image: Image.Image = Image.open(io.BytesIO(data))
    first = job.operations[0]
    if draft and isinstance(first, Resize) and isinstance(image, ImageFile.ImageFile):
        image.draft("RGB", (TARGET, TARGET * image.height // image.width))
    image.load()
    for op in job.operations:
        if isinstance(op, Resize):
            image = image.copy()
            image.thumbnail((op.width, op.height), Image.Resampling.LANCZOS, reducing_gap=None)
        elif isinstance(op, Grayscale):
            image = image.convert("L")
        elif isinstance(op, Blur):
            image = image.filter(ImageFilter.GaussianBlur(op.sigma))
        elif isinstance(op, Rotate):
            image = image.rotate(-op.angle, expand=True)
        elif isinstance(op, Crop):
            left, top = (image.width - op.width) // 2, (image.height - op.height) // 2
            image = image.crop((left, top, left + op.width, top + op.height))
    return save(image, job.output)


def vips(data: bytes, job: Job) -> bytes:
    first = job.operations[0]
    if isinstance(first, Resize):
        image = pyvips.Image.thumbnail_buffer(data, first.width, height=first.height)
    else:
        image = pyvips.Image.new_from_buffer(data, "")
    for op in job.operations:
        if isinstance(op, Grayscale):
            image = image.colourspace("b-w")
        elif isinstance(op, Blur):
            image = image.gaussblur(op.sigma)
        elif isinstance(op, Rotate):
            image = image.rot("d90")
        elif isinstance(op, Crop):
            image = image.crop((image.width - op.width) // 2, (image.height - op.height) // 2, op.width, op.height)
    if job.output is OutputFormat.WEBP:
        return bytes(image.webpsave_buffer(Q=80))
    return bytes(image.jpegsave_buffer(Q=85))


def pipeline(data: bytes, job: Job) -> bytes:
    return process(data, job.operations, OutputSpec(format=job.output, quality=85 if job.output == "jpeg" else 80)).data


ENGINES: dict[str, Callable[[bytes, Job], bytes]] = {
    "pillow-naive": lambda data, job: pillow(data, job, draft=False),
    "pillow-draft": lambda data, job: pillow(data, job, draft=True),
    "pyvips": vips,
    "pipeline": pipeline,
}


def median_ms(engine: Callable[[bytes, Job], bytes], data: bytes, job: Job, rounds: int) -> float:
    engine(data, job)  # warm-up: imports, codec initialisation
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        engine(data, job)
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main(rounds: Annotated[int, typer.Option(help="timed runs per cell (after one warm-up)")] = 5) -> None:
    console = Console(width=150)
    pyvips.cache_set_max(0)  # every run does the work again, as every task would
    sources = {fmt: photo(fmt, SIZE) for fmt in ("JPEG", "PNG")}
    console.print(
        f"sources: skimage's 'chelsea' photo at {SIZE[0]}×{SIZE[1]} — JPEG {len(sources['JPEG']) // 1024} KiB, "
        f"PNG {len(sources['PNG']) // 1024} KiB; libvips {pyvips.version(0)}.{pyvips.version(1)}, "
        f"Pillow {pillow_version}; median of {rounds} runs, ms"
    )
    table = Table("source", "job", *ENGINES, "naive/pipeline", "pipeline/pyvips")
    for source, data in sources.items():
        for job in JOBS:
            medians = {name: median_ms(engine, data, job, rounds) for name, engine in ENGINES.items()}
            table.add_row(
                source,
                job.name,
                *(f"{value:.0f}" for value in medians.values()),
                f"{medians['pillow-naive'] / medians['pipeline']:.1f}×",
                f"{medians['pipeline'] / medians['pyvips']:.1f}×",
            )
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
