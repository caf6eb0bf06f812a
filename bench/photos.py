"""Benchmark sources: real photographs from scikit-image's bundled data, upscaled to 12 MP."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
from PIL import Image
from skimage import data

SIZE = (4000, 3000)  # 12 MP
# Seven colour photographs scikit-image ships (no download): people, animals, objects, a night
# sky, a retina, a street scene. `chelsea` (a cat on a carpet) is the default of every bench.
PHOTOS = ("chelsea", "astronaut", "coffee", "rocket", "retina", "hubble_deep_field", "stereo_motorcycle")
# Sources as a camera or an editor would write them.
_SAVE_OPTIONS: dict[str, dict[str, object]] = {
    "JPEG": {"quality": 90},
    "WEBP": {"quality": 90},
    "AVIF": {"quality": 80, "speed": 8},
    "PNG": {},
}


@cache
def photo(fmt: str, size: tuple[int, int] = SIZE, quality: int | None = None, name: str = "chelsea") -> bytes:
    """The photograph `name` cropped to the aspect of `size`, upscaled (bicubic) to it, encoded as `fmt`."""
    image = Image.fromarray(_pixels(name))
    aspect = size[0] / size[1]
    width, height = image.size
    if width / height > aspect:
        keep = round(height * aspect)
        image = image.crop(((width - keep) // 2, 0, (width - keep) // 2 + keep, height))
    else:
        keep = round(width / aspect)
        image = image.crop((0, (height - keep) // 2, width, (height - keep) // 2 + keep))
    image = image.resize(size, Image.Resampling.BICUBIC)
    options = dict(_SAVE_OPTIONS.get(fmt, {}))
    if quality is not None:
        options["quality"] = quality
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _pixels(name: str) -> np.ndarray:
    pixels = getattr(data, name)()
    if isinstance(pixels, tuple):  # stereo pairs: the left view
        pixels = pixels[0]
    return np.asarray(pixels)[..., :3]
