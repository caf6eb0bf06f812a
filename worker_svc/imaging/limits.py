"""Limits a source and a result must respect: all but the encoded size are checked before the
full decode; the encoded size as the encoder writes."""

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
    # The encoded result: it is held in memory by the pool process and the worker (and read whole
    # by clients that do not stream), so the encoder stops as soon as it writes past this.
    max_result_bytes: int = 256 * 1024 * 1024
