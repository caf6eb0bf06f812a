"""N variants from one task against N tasks: what deciding once, shrinking once and sharing the
first steps saves.

Run with `python -m bench.variants_bench` (`make bench`; about two minutes on two cores). On one
pinned core (`--cpu`), per source format and variant set, alternating: `process_variants` with
every variant (one task) and `process` once per variant (N tasks), the engine exactly as a worker
runs it. Sources: three of bench.photos' photographs at 12 MP. Each cell is the median over the
photographs of each photograph's median of `--rounds` runs; "saved" is 1 - one task / N tasks.
"""

from __future__ import annotations

import os
import statistics
from typing import Annotated

import pyvips  # type: ignore[import-untyped]
import typer
from rich.console import Console
from rich.table import Table

from bench.engine_bench import median_ms
from bench.photos import PHOTOS, photo
from tasks.operations import Grayscale, Op, OutputFormat, OutputSpec, Resize, ResizeFit
from worker_svc.imaging import Variant, process, process_variants

SOURCES = ("JPEG", "PNG", "WEBP")


def _fit(width: int) -> list[Op]:
    return [Resize(width, width, fit=ResizeFit.INSIDE)]


SETS: dict[str, list[Variant]] = {
    # The case: a thumbnail, a page image and a large one, each its own format.
    "200 WebP + 800 AVIF + 1600 JPEG": [
        Variant("thumb", _fit(200), OutputSpec(format=OutputFormat.WEBP, quality=80)),
        Variant("page", _fit(800), OutputSpec(format=OutputFormat.AVIF)),
        Variant("large", _fit(1600), OutputSpec(format=OutputFormat.JPEG, quality=85)),
    ],
    # A responsive srcset: five widths of one format.
    "srcset 320–1920 WebP": [
        Variant(f"w{width}", _fit(width), OutputSpec(format=OutputFormat.WEBP, quality=80))
        for width in (320, 640, 960, 1280, 1920)
    ],
    # Steps shared before the sizes (run once for all of them).
    "grey, then 200 / 800 JPEG": [
        Variant(name, [Grayscale(), *_fit(width)], OutputSpec(format=OutputFormat.JPEG, quality=85))
        for name, width in (("small", 200), ("medium", 800))
    ],
}


def main(
    rounds: Annotated[int, typer.Option(help="timed runs per photograph and cell (after one warm-up)")] = 3,
    photos: Annotated[int, typer.Option(help="how many photographs", min=1, max=len(PHOTOS))] = 3,
    cpu: Annotated[int, typer.Option(help="the core everything is pinned to")] = 1,
) -> None:
    console = Console(width=160)
    os.sched_setaffinity(0, {cpu})
    pyvips.cache_set_max(0)
    table = Table(
        "source",
        "variants",
        "one task, ms",
        "N tasks, ms",
        "saved",
        title=f"N variants in one task vs N tasks; one core ({cpu}); median over {photos} photographs of the "
        f"median of {rounds} runs",
    )
    for fmt in SOURCES:
        for label, variants in SETS.items():
            together: list[float] = []
            apart: list[float] = []
            for name in PHOTOS[:photos]:
                data = photo(fmt, name=name)

                def one_task(data: bytes = data, variants: list[Variant] = variants) -> bytes:
                    return process_variants(data, variants)[0].data

                def n_tasks(data: bytes = data, variants: list[Variant] = variants) -> bytes:
                    return b"".join(process(data, v.operations, v.output).data for v in variants)

                for _ in range(2):  # alternate, so drift on a shared machine hits both alike
                    together.append(median_ms(one_task, rounds))
                    apart.append(median_ms(n_tasks, rounds))
            one, many = statistics.median(together), statistics.median(apart)
            table.add_row(fmt, label, f"{one:.0f}", f"{many:.0f}", f"{1 - one / many:.0%}")
            console.print(f"  {fmt} {label}: one task {one:.0f} ms, N tasks {many:.0f} ms")
    console.print(table)


if __name__ == "__main__":
    typer.run(main)
