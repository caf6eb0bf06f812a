"""The engine against the fastest configuration of its libraries, and against thumbor.

Run with `python -m bench.engine_bench` (`make bench`; about ten minutes on two cores, less with
`--photos 3`). Everything runs on one pinned core (`--cpu`), one engine after the other per cell,
so each row is measured side by side under the same load. Sources: seven photographs scikit-image
ships (bench.photos), upscaled to 12 MP, each as JPEG q90, PNG, WebP q90 and AVIF q80.

Engines, per job:
- PixelFlow: `worker_svc.imaging.process`, exactly what a worker runs (limits, sniffing, metadata
  handling included); "PixelFlow fast" with PIXELFLOW_IMAGE_FAST_SHRINK_ON_LOAD (shrinks on load
  the whole way, as imgproxy does; bench.engine_quality shows what that costs).
- libvips: its fastest configuration: `thumbnail_buffer` (shrink-on-load by the same factor, then
  lanczos3) for resizes; demand-driven `rot` + `crop` otherwise; cache off, one thread.
- Pillow: JPEG draft (DCT-domain shrink, never below the target) + `thumbnail` with a reducing gap.
- thumbor 7.8 (its own virtualenv, bench.thumbor_server) over HTTP on loopback, file loader, no
  storage: the server people compare imgproxy-class services to. Its time includes reading the
  file and the HTTP exchange (about a millisecond here).

Each cell is the median over the photographs of each photograph's median of `--rounds` runs.
"fastest" is the faster library configuration (libvips or Pillow); thumbor is its own ratio.
"""

from __future__ import annotations

import io
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import pyvips  # type: ignore[import-untyped]
import typer
from PIL import __version__ as pillow_version
from rich.console import Console
from rich.table import Table

from bench import thumbor_server
from bench.engine_quality import pillow_image, quality_table, vips_image
from bench.photos import PHOTOS, SIZE, photo
from tasks.operations import Blur, Crop, Grayscale, Op, OutputFormat, OutputSpec, Resize, ResizeFit, Rotate
from worker_svc.imaging import process

TARGET = 800
SOURCES = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp", "AVIF": "avif"}
HALF = (SIZE[1] // 2, SIZE[0] // 2)  # half of each side of the turned 4000×3000 image


@dataclass(frozen=True)
class Job:
    key: str
    name: str
    operations: list[Op]
    output: OutputFormat
    thumbor: str  # the same job as a thumbor URL path (before the file name)

    @property
    def quality(self) -> int:
        return 80 if self.output is OutputFormat.WEBP else 85


FIT = Resize(TARGET, TARGET, fit=ResizeFit.INSIDE)
_CROP_IN_SOURCE = (
    f"{(SIZE[0] - HALF[1]) // 2}x{(SIZE[1] - HALF[0]) // 2}:{(SIZE[0] + HALF[1]) // 2}x{(SIZE[1] + HALF[0]) // 2}"
)
JOBS = [
    Job("a", "fit 800 → JPEG q85", [FIT], OutputFormat.JPEG, "fit-in/800x800/filters:quality(85):format(jpeg)"),
    Job("b", "fit 800 → WebP q80", [FIT], OutputFormat.WEBP, "fit-in/800x800/filters:quality(80):format(webp)"),
    # thumbor resizes before its filters run: fit the unturned image into the (square) box, turn.
    Job(
        "c",
        "rotate 90 + fit 800 → JPEG",
        [Rotate(90), FIT],
        OutputFormat.JPEG,
        "fit-in/800x800/filters:rotate(270):quality(85):format(jpeg)",
    ),
    Job(
        "d",
        "fit 800 + grey + blur σ2 → JPEG",
        [FIT, Grayscale(), Blur(2)],
        OutputFormat.JPEG,
        "fit-in/800x800/filters:grayscale():blur(6,2):quality(85):format(jpeg)",
    ),
    # thumbor crops the source before its filters run, so the same pixels are its crop of the
    # unturned image followed by a turn.
    Job(
        "e",
        "rotate 90 + centre crop half → JPEG",
        [Rotate(90), Crop(HALF[0], HALF[1])],
        OutputFormat.JPEG,
        f"{_CROP_IN_SOURCE}/filters:rotate(270):quality(85):format(jpeg)",
    ),
]


def resize_first(operations: list[Op]) -> list[Op]:
    """The order a person tuning libvips or Pillow by hand would write: a fit into a square box
    before a quarter turn gives the same image, turning a fraction of the pixels."""
    if len(operations) >= 2 and isinstance(operations[0], Rotate) and operations[1] == FIT:
        return [FIT, operations[0], *operations[2:]]
    return operations


def pillow(data: bytes, job: Job) -> bytes:
    image = pillow_image(data, resize_first(job.operations))
    buffer = io.BytesIO()
    if job.output is OutputFormat.WEBP:
        image.save(buffer, "WEBP", quality=job.quality)
    else:
        image.convert("L" if image.mode == "L" else "RGB").save(buffer, "JPEG", quality=job.quality)
    return buffer.getvalue()


def vips(data: bytes, job: Job) -> bytes:
    image = vips_image(data, resize_first(job.operations))
    if job.output is OutputFormat.WEBP:
        return bytes(image.webpsave_buffer(Q=job.quality))
    return bytes(image.jpegsave_buffer(Q=job.quality))


def pipeline(data: bytes, job: Job, *, fast: bool = False) -> bytes:
    spec = OutputSpec(format=job.output, quality=job.quality)
    return process(data, job.operations, spec, fast_shrink_on_load=fast).data


ENGINES = ("PixelFlow", "PixelFlow fast", "libvips", "Pillow", "thumbor")


def _engines(data: bytes, job: Job, file_name: str, thumbor: thumbor_server.Thumbor) -> dict[str, Callable[[], bytes]]:
    return {
        "PixelFlow": lambda: pipeline(data, job),
        "PixelFlow fast": lambda: pipeline(data, job, fast=True),
        "libvips": lambda: vips(data, job),
        "Pillow": lambda: pillow(data, job),
        "thumbor": lambda: thumbor.get(f"{job.thumbor}/{file_name}"),
    }


def median_ms(run: Callable[[], bytes], rounds: int) -> float:
    run()  # warm-up: imports, codec initialisation, the page cache
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def main(
    rounds: Annotated[int, typer.Option(help="timed runs per photograph and cell (after one warm-up)")] = 3,
    photos: Annotated[int, typer.Option(help="how many of the seven photographs", min=1, max=len(PHOTOS))] = 7,
    cpu: Annotated[int, typer.Option(help="the core everything is pinned to")] = 1,
    sources: Annotated[str, typer.Option(help="source formats, comma-separated")] = ",".join(SOURCES),
) -> None:
    console = Console(width=200)
    os.sched_setaffinity(0, {cpu})
    pyvips.cache_set_max(0)  # every run does the work again, as every task would
    pyvips.concurrency_set(1)
    names = PHOTOS[:photos]
    formats = [fmt.strip().upper() for fmt in sources.split(",")]
    with tempfile.TemporaryDirectory(prefix="engine-bench-") as work:
        folder = Path(work) / "sources"
        folder.mkdir()
        files = {(fmt, name): folder / f"{name}.{SOURCES[fmt]}" for fmt in formats for name in names}
        for (fmt, name), path in files.items():
            path.write_bytes(photo(fmt, SIZE, name=name))
        console.print(
            f"{len(names)} photographs at {SIZE[0]}×{SIZE[1]}; libvips {pyvips.version(0)}.{pyvips.version(1)}, "
            f"Pillow {pillow_version}, {thumbor_server.version()}; one core ({cpu}); median over photographs of "
            f"the median of {rounds} runs, ms"
        )
        table = Table(
            "source",
            "job",
            *ENGINES,
            "PixelFlow / fastest",
            "thumbor / PixelFlow",
            "fast / fastest",
            "thumbor / fast",
        )
        with thumbor_server.running_thumbor(folder, Path(work), cpu) as thumbor:
            for fmt in formats:
                for job in JOBS:
                    cells: dict[str, list[float]] = {engine: [] for engine in ENGINES}
                    for name in names:
                        path = files[fmt, name]
                        data = path.read_bytes()
                        for engine, run in _engines(data, job, path.name, thumbor).items():
                            cells[engine].append(median_ms(run, rounds))
                    medians = {engine: statistics.median(values) for engine, values in cells.items()}
                    fastest = min(medians["libvips"], medians["Pillow"])
                    table.add_row(
                        fmt,
                        f"{job.key}: {job.name}",
                        *(f"{medians[engine]:.1f}" for engine in cells),
                        f"{medians['PixelFlow'] / fastest:.2f}",
                        f"{medians['thumbor'] / medians['PixelFlow']:.2f}",
                        f"{medians['PixelFlow fast'] / fastest:.2f}",
                        f"{medians['thumbor'] / medians['PixelFlow fast']:.2f}",
                    )
                    console.print(f"  {fmt} {job.key}: " + ", ".join(f"{k} {v:.1f}" for k, v in medians.items()))
        console.print(table)
        console.print(quality_table())


if __name__ == "__main__":
    typer.run(main)
