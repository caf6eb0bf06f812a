"""Where an image is interesting, for `gravity: smart`: libvips' attention measure (edges,
saturated colour and skin tones, as imgproxy's and thumbor's smart crops use), computed on a
copy at most ANALYSIS_SIDE pixels a side (the focus does not need full resolution, and 12 MP
would cost ~100 ms instead of ~3)."""

from __future__ import annotations

import pyvips  # type: ignore[import-untyped]
from PIL import Image

from worker_svc.imaging.geometry import Size

ANALYSIS_SIDE = 512


def focus(image: Image.Image, crop: Size) -> tuple[int, int]:
    """The point, in `image`'s pixels, that a `crop`-sized box should be centred on."""
    # Shrunk first (the pipeline's working modes all reduce), converted after: a 12 MP image is
    # never copied whole.
    reduction = max(image.size) // ANALYSIS_SIDE
    sample = (image.reduce(reduction) if reduction > 1 else image).convert("RGB")
    factor_x, factor_y = image.width / sample.width, image.height / sample.height
    vips = pyvips.Image.new_from_memory(sample.tobytes(), sample.width, sample.height, 3, "uchar")
    window = (
        max(1, min(sample.width, round(crop[0] / factor_x))),
        max(1, min(sample.height, round(crop[1] / factor_y))),
    )
    _, found = vips.smartcrop(*window, interesting="attention", attention_x=True, attention_y=True)
    return round(found["attention_x"] * factor_x), round(found["attention_y"] * factor_y)
