"""Peak memory of one task in a pool process: how much a worker process's resident memory grows
(VmHWM after the job minus VmRSS before it, read from /proc) for 12 MP and 50 MP sources.

Run with `python -m bench.memory_bench` (about a minute). Each measurement runs in a fresh
spawned process, as the worker's pool runs jobs in processes of their own: the source bytes have
arrived (pickled, as from the worker) before the baseline is read, so the figure is what
decoding, the operations and encoding add.
"""

from __future__ import annotations

import multiprocessing
import statistics
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from bench.photos import photo
from tasks.operations import Crop, Op, OutputFormat, OutputSpec, Resize, ResizeFit, Rotate

MiB = 1024 * 1024
SIZES = {"12 MP": (4000, 3000), "50 MP": (8165, 6124)}
JOBS: dict[str, tuple[list[Op], OutputFormat]] = {
    "fit 800 → JPEG": ([Resize(800, 800, fit=ResizeFit.INSIDE)], OutputFormat.JPEG),
    "rotate 90 + crop half → JPEG": ([], OutputFormat.JPEG),  # the crop depends on the size: set in main
    "full size → WebP": ([], OutputFormat.WEBP),
}


def _status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _grow(data: bytes, operations: list[Op], output: OutputFormat) -> int:
    from worker_svc.imaging import ImageLimits, process  # noqa: PLC0415 - imported in the child, as the pool does

    before = _status_bytes("VmRSS")
    process(data, operations, OutputSpec(format=output), limits=ImageLimits(max_pixels=60_000_000))
    return _status_bytes("VmHWM") - before


def measure(data: bytes, operations: list[Op], output: OutputFormat) -> int:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_status_bytes, "VmRSS").result()  # the interpreter is up before the job is sent
        return pool.submit(_grow, data, operations, output).result()


def main(rounds: int = typer.Option(3, help="fresh processes per cell; the median is shown")) -> None:
    console = Console(width=140)
    table = Table("source", *JOBS, title="peak RSS growth of a pool process per task, MiB (median)")
    for label, size in SIZES.items():
        for fmt in ("JPEG", "PNG"):
            data = photo(fmt, size)
            row = []
            for name, (listed, output) in JOBS.items():
                turned: list[Op] = [Rotate(90), Crop(size[1] // 2, size[0] // 2)]
                operations = turned if name.startswith("rotate") else listed
                samples = [measure(data, operations, output) for _ in range(rounds)]
                row.append(f"{statistics.median(samples) / MiB:.0f}")
            table.add_row(f"{label} {fmt} ({len(data) / MiB:.1f} MiB)", *row)
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
