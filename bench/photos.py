"""Benchmark sources: real photographs from scikit-image's bundled data, upscaled to 12 MP."""

from __future__ import annotations

import io
from functools import cache

from PIL import Image
from skimage import data

SIZE = (4000, 3000)  # 12 MP


@cache
def photo(fmt: str, size: tuple[int, int] = SIZE, quality: int = 90) -> bytes:
    """skimage's "chelsea" (a cat photographed on a carpet) upscaled to `size`, encoded as `fmt`."""
    image = Image.fromarray(data.chelsea()).resize(size, Image.Resampling.BICUBIC)  # type: ignore[no-untyped-call]
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"quality": quality} if fmt == "JPEG" else {}))
    return buffer.getvalue()
