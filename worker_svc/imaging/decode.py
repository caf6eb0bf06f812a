"""Opening a source: sniffed, limited from its header, shrunk on load, turned upright.

Pillow only ever tries the one decoder the magic bytes named (`formats=`), so a file that fools
the sniffer still cannot reach another decoder (EPS, PSD, ICO, ...). Truncated files fail:
`ImageFile.LOAD_TRUNCATED_IMAGES` stays False.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass

import pyvips  # type: ignore[import-untyped]
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from worker_svc.imaging.errors import ErrorCode, ImageError
from worker_svc.imaging.frames import count_frames
from worker_svc.imaging.geometry import Size
from worker_svc.imaging.limits import ImageLimits
from worker_svc.imaging.sniff import SourceFormat, sniff

_ORIENTATION_TAG = 0x0112
_SWAPS_AXES = frozenset({5, 6, 7, 8})
# What Pillow raises on damaged input, decoder by decoder.
_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, IndexError, TypeError)


# libvips decodes PNG about 2× faster than Pillow (docs/benchmarks.md) and can shrink while it
# decodes; one thread per process, since the worker already runs a process per core.
pyvips.cache_set_max(0)
pyvips.concurrency_set(1)
_VIPS_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


@dataclass(frozen=True)
class Header:
    """What is known before the pixels are decoded."""

    data: bytes
    image: ImageFile.ImageFile
    format: SourceFormat
    size: Size  # upright, as the user sees it (after auto-orient, when it applies)
    orientation: int  # the EXIF orientation (1 when none or when auto-orient is off)


def open_header(data: bytes, limits: ImageLimits, *, auto_orient: bool) -> Header:
    """Identifies the image and checks its declared size and frames; no pixel is decoded yet."""
    fmt = sniff(data)
    if ImageFile.LOAD_TRUNCATED_IMAGES:  # pragma: no cover - a global someone else may flip
        raise RuntimeError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES must stay False")
    try:
        image = Image.open(io.BytesIO(data), formats=[fmt.value])
    except Image.DecompressionBombError as error:
        raise _too_large(limits) from error
    except UnidentifiedImageError as error:
        raise ImageError(ErrorCode.CORRUPT_IMAGE, f"the {fmt.value} data cannot be read") from error
    except _DECODE_ERRORS as error:
        raise ImageError(ErrorCode.CORRUPT_IMAGE, f"the {fmt.value} header is damaged") from error
    if not isinstance(image, ImageFile.ImageFile):  # pragma: no cover - Image.open always returns one
        raise ImageError(ErrorCode.CORRUPT_IMAGE, "the image cannot be read")
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(ErrorCode.CORRUPT_IMAGE, f"the image declares an empty size {width}×{height}")
    if width * height > limits.max_pixels:
        raise _too_large(limits, f" ({width}×{height})")
    if count_frames(data, fmt, image, limits.max_frames) > limits.max_frames:
        raise ImageError(
            ErrorCode.IMAGE_TOO_LARGE,
            f"the image has more than {limits.max_frames} frames; at most {limits.max_frames} are accepted",
        )
    orientation = _orientation(image) if auto_orient else 1
    upright = (height, width) if orientation in _SWAPS_AXES else (width, height)
    return Header(data=data, image=image, format=fmt, size=upright, orientation=orientation)


def decode(header: Header, *, shrink_to: Size | None) -> Image.Image:
    """The first frame, fully decoded and upright. `shrink_to` (upright) lets a JPEG decode at
    1/2, 1/4 or 1/8 scale as long as both sides stay at least that large."""
    image: Image.Image = header.image
    if header.format is SourceFormat.PNG:
        image = _decode_png_with_vips(header, shrink_to)
    elif shrink_to is not None and header.format is SourceFormat.JPEG:
        raw = shrink_to[::-1] if header.orientation in _SWAPS_AXES else shrink_to
        header.image.draft(image.mode, (raw[0], raw[1]))
    try:
        if image is header.image:
            image.load()
        if header.orientation != 1:
            image = ImageOps.exif_transpose(image)
    except Image.DecompressionBombError as error:  # pragma: no cover - the header check comes first
        raise ImageError(ErrorCode.IMAGE_TOO_LARGE, "the image is too large to decode") from error
    except MemoryError as error:
        raise ImageError(ErrorCode.IMAGE_TOO_LARGE, "the image is too large to decode in memory") from error
    except _DECODE_ERRORS as error:
        raise ImageError(ErrorCode.CORRUPT_IMAGE, f"the {header.format.value} data is truncated or damaged") from error
    return image


def _decode_png_with_vips(header: Header, shrink_to: Size | None) -> Image.Image:
    """The PNG's pixels decoded by libvips (shrunk by an integer factor while decoding when the
    first step downscales), handed to Pillow with the header's metadata (ICC, EXIF, text)."""
    try:
        vips = pyvips.Image.new_from_buffer(header.data, "", access="sequential", fail_on="truncated")
        if shrink_to is not None:
            raw = shrink_to[::-1] if header.orientation in _SWAPS_AXES else shrink_to
            factor = min(vips.width // max(1, raw[0]), vips.height // max(1, raw[1]))
            if factor >= 2:
                vips = vips.shrink(factor, factor)
        if vips.format != "uchar":
            # 16-bit (and wider) samples: keep the top 8 bits, as Pillow's own conversion would.
            vips = (vips / (256 if vips.format in ("ushort", "short") else 1)).cast("uchar")
        mode = _VIPS_MODES[vips.bands]
        image = Image.frombytes(mode, (vips.width, vips.height), vips.write_to_memory())
    except pyvips.Error as error:
        raise ImageError(ErrorCode.CORRUPT_IMAGE, "the PNG data is truncated or damaged") from error
    except KeyError as error:  # pragma: no cover - PNG has 1 to 4 bands
        raise ImageError(ErrorCode.UNSUPPORTED_IMAGE, "the PNG has an unsupported number of channels") from error
    image.info = dict(header.image.info)
    if "transparency" in image.info and mode in ("RGBA", "LA"):
        del image.info["transparency"]  # libvips already turned it into an alpha channel
    return image


def _orientation(image: Image.Image) -> int:
    try:
        if image.format == "PNG":
            # Pillow's PNG getexif() decodes the whole image to look for an eXIf chunk after the
            # pixels; the chunk belongs before them, where open() has already read it.
            raw = image.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
            value = exif.get(_ORIENTATION_TAG, 1)
        else:
            value = image.getexif().get(_ORIENTATION_TAG, 1)
    except _DECODE_ERRORS:
        return 1  # unreadable EXIF: leave the image as stored
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _too_large(limits: ImageLimits, detail: str = "") -> ImageError:
    megapixels = limits.max_pixels / 1_000_000
    return ImageError(ErrorCode.IMAGE_TOO_LARGE, f"the image is over the {megapixels:g} megapixel limit{detail}")
