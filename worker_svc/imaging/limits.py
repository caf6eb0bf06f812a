"""Limits a source and a result must respect: all but the encoded size are checked before the
full decode; the encoded size as the encoder writes."""

from __future__ import annotations

from dataclasses import dataclass

from tasks.operations import MAX_OUTPUT_PIXELS

# What one task adds to a pool process at its peak, per source pixel (bench.memory_bench: a
# full-size WebP encode, the costliest job measured, grew a process by 172 MiB for 12 MP and
# 687 MiB for 50 MP, 14 bytes a pixel), with some headroom, plus the codecs' fixed buffers.
PEAK_BYTES_PER_PIXEL = 15
PEAK_FIXED_BYTES = 16 * 1024 * 1024


def peak_task_bytes(max_pixels: int) -> int:
    """The memory budget of one task whose source may have up to `max_pixels` pixels."""
    return PEAK_BYTES_PER_PIXEL * max_pixels + PEAK_FIXED_BYTES


@dataclass(frozen=True)
class ImageLimits:
    # Width × height of the source as its header declares it.
    max_pixels: int = 50_000_000
    # Animated GIF and WebP stay animated into GIF or WebP (animation.py; their frames × result
    # pixels bounded by max_pixels), anything else is reduced to its first frame; sources with
    # more frames than this are refused outright (a frame count is cheap to read, frames are not).
    max_frames: int = 100
    # The image written: WebP cannot go past 16383 px a side, so no format is asked to.
    max_output_side: int = 16_383
    max_output_pixels: int = MAX_OUTPUT_PIXELS
    # The encoded result: it is held in memory by the pool process and the worker (and read whole
    # by clients that do not stream), so the encoder stops as soon as it writes past this.
    max_result_bytes: int = 256 * 1024 * 1024
