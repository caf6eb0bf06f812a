"""Animated GIF and WebP: every frame through the same operations, written as an animation.

An animated source keeps its animation when the output can hold one (GIF or WebP) unless the
task asks for the first frame only (`first_frame_only`); any other output gets the first frame.
Frames are decoded one at a time, composited by Pillow (disposal and blending applied, so each
is a whole picture), and only the results are held: the frame limit bounds their number, and
their pixels together may not exceed the source pixel limit (100 frames of 800×600 is 48 MP).
A smart crop would place each frame's box on its own subject and make the picture jump, so in
an animation `smart` places boxes in the centre.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

from PIL import Image, ImageSequence

from tasks.failures import FailureCode
from tasks.operations import Crop, Gravity, Op, OutputFormat, OutputSpec, Resize
from worker_svc.imaging.errors import ImageError
from worker_svc.imaging.geometry import Size
from worker_svc.imaging.limits import ImageLimits
from worker_svc.imaging.sniff import SourceFormat

ANIMATED_SOURCES = frozenset({SourceFormat.GIF, SourceFormat.WEBP})
ANIMATED_OUTPUTS = frozenset({OutputFormat.GIF, OutputFormat.WEBP})
_DEFAULT_DURATION_MS = 100


def keeps_animation(frames: int, source: SourceFormat, output: OutputFormat, spec: OutputSpec) -> bool:
    return frames > 1 and source in ANIMATED_SOURCES and output in ANIMATED_OUTPUTS and not spec.first_frame_only


def steady(operations: Sequence[Op]) -> list[Op]:
    """The operations with `smart` placement made central (see the module's docstring)."""
    return [
        dataclasses.replace(op, gravity=Gravity.CENTER)
        if isinstance(op, Crop | Resize) and op.gravity is Gravity.SMART
        else op
        for op in operations
    ]


def check_size(frames: int, result: Size, limits: ImageLimits) -> None:
    total = frames * result[0] * result[1]
    if total > limits.max_pixels:
        raise ImageError(
            FailureCode.OUTPUT_TOO_LARGE,
            f"{frames} frames of {result[0]}×{result[1]} are {total / 1_000_000:.1f} megapixels; an animation may have "
            f"{limits.max_pixels / 1_000_000:g} in all: ask for a smaller size or for the first frame only",
        )


def frames(source: Image.Image) -> Iterator[tuple[Image.Image, int]]:
    """Each frame as a whole RGBA picture, with its duration in milliseconds."""
    for frame in ImageSequence.Iterator(source):
        picture = frame.convert("RGBA")  # loads the frame: WebP's duration is known only then
        duration = frame.info.get("duration")
        if isinstance(duration, int | float) and duration > 0:
            yield picture, int(duration)
        else:
            yield picture, _DEFAULT_DURATION_MS
