"""Limits a source and a result must respect; every one is checked before the full decode."""

from __future__ import annotations

from dataclasses import dataclass

from common.operations import MAX_OUTPUT_PIXELS


@dataclass(frozen=True)
class ImageLimits:
    # Width × height of the source as its header declares it.
    max_pixels: int = 50_000_000
    # Animated GIF/WebP/AVIF and multi-page TIFF are reduced to their first frame; sources with
    # more frames than this are refused outright (a frame count is cheap to read, frames are not).
    max_frames: int = 100
    # The image written: WebP cannot go past 16383 px a side, so no format is asked to.
    max_output_side: int = 16_383
    max_output_pixels: int = MAX_OUTPUT_PIXELS
