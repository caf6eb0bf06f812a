"""Opening a source: sniffed, limited from its header, shrunk on load, turned upright.

Pillow only ever tries the one decoder the magic bytes named (`formats=`), so a file that fools
the sniffer still cannot reach another decoder (EPS, PSD, ICO, ...). Truncated files fail:
`ImageFile.LOAD_TRUNCATED_IMAGES` stays False.
"""

from __future__ import annotations

import io
import math
import struct
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pyvips  # type: ignore[import-untyped]
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from tasks.failures import FailureCode
from worker_svc.imaging import colour
from worker_svc.imaging.errors import ImageError
from worker_svc.imaging.frames import count_frames
from worker_svc.imaging.geometry import Box, Size
from worker_svc.imaging.limits import ImageLimits
from worker_svc.imaging.sniff import SourceFormat, sniff

_ORIENTATION_TAG = 0x0112
_SWAPS_AXES = frozenset({5, 6, 7, 8})
# What Pillow raises on damaged input, decoder by decoder.
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, struct.error, zlib.error, IndexError, TypeError)


# One thread per process, since the worker already runs a process per core.
pyvips.cache_set_max(0)
pyvips.concurrency_set(1)
_VIPS_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
# One loader per sniffed format: libvips, like Pillow, only ever sees the decoder the magic
# bytes named (BMP never goes to libvips, which has no BMP loader of its own).
_VIPS_LOADERS = {
    SourceFormat.JPEG: "jpegload_buffer",
    SourceFormat.PNG: "pngload_buffer",
    SourceFormat.WEBP: "webpload_buffer",
    SourceFormat.GIF: "gifload_buffer",
    SourceFormat.TIFF: "tiffload_buffer",
    SourceFormat.AVIF: "heifload_buffer",
}
_BITS_PER_SAMPLE_TAG = 258
# Shrink-on-load leaves at least this much for the Lanczos reduce after it: shrinking the whole
# way in the decoder (a box filter, in effect, as imgproxy and thumbor do) costs 4–20 dB of PSNR
# on detailed photographs (bench.engine_quality), ~25% of a JPEG fit's time; `fast_shrink` does it.
_REDUCE_GAP = 2.0


@dataclass(frozen=True)
class Header:
    """What is known before the pixels are decoded."""

    data: bytes
    image: ImageFile.ImageFile
    format: SourceFormat
    size: Size  # upright, as the user sees it (after auto-orient, when it applies)
    orientation: int  # the EXIF orientation (1 when none or when auto-orient is off)
    frames: int = 1  # counted up to the limit (frames.py)


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
        raise ImageError(FailureCode.CORRUPT_IMAGE, f"the {fmt.value} data cannot be read") from error
    except DECODE_ERRORS as error:
        raise ImageError(FailureCode.CORRUPT_IMAGE, f"the {fmt.value} header is damaged") from error
    if not isinstance(image, ImageFile.ImageFile):  # pragma: no cover - Image.open always returns one
        raise ImageError(FailureCode.CORRUPT_IMAGE, "the image cannot be read")
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageError(FailureCode.CORRUPT_IMAGE, f"the image declares an empty size {width}×{height}")
    if width * height > limits.max_pixels:
        raise _too_large(limits, f" ({width}×{height})")
    frames = count_frames(data, fmt, image, limits.max_frames)
    if frames > limits.max_frames:
        raise ImageError(
            FailureCode.IMAGE_TOO_LARGE,
            f"the image has more than {limits.max_frames} frames; at most {limits.max_frames} are accepted",
        )
    orientation = _orientation(image) if auto_orient else 1
    upright = (height, width) if orientation in _SWAPS_AXES else (width, height)
    return Header(data=data, image=image, format=fmt, size=upright, orientation=orientation, frames=frames)


def decode(
    header: Header,
    *,
    shrink_to: Size | None,
    region: Box | None = None,
    keep_profile: bool = False,
    fast_shrink: bool = False,
) -> Image.Image:
    """The first frame, fully decoded, upright and (unless `keep_profile`) in sRGB. `shrink_to`
    (upright) is the first resize's downscaled size: where libvips decodes, it returns the image
    at exactly that size (shrunk while decoding where the format allows: by the whole factor with
    `fast_shrink`, else leaving 2× for Lanczos). `region` (of an image with no EXIF turn) is the
    only part wanted: libvips hands over just that."""
    to_srgb = header.format in _VIPS_LOADERS and colour.needs_srgb(header.image, keep_profile=keep_profile)
    with _decoding(header.format):
        if _decodes_with_vips(header, shrink_to, to_srgb=to_srgb):
            gap = 1.0 if fast_shrink else _REDUCE_GAP
            image = _decode_with_vips(header, shrink_to, region, to_srgb=to_srgb, gap=gap)
        else:
            header.image.load()
            image = header.image if region is None else header.image.crop(region)
        return ImageOps.exif_transpose(image) if header.orientation != 1 else image


@contextmanager
def _decoding(fmt: SourceFormat) -> Iterator[None]:
    """What Pillow raises while it decodes, as the ImageError the input is to blame for."""
    try:
        yield
    except Image.DecompressionBombError as error:  # pragma: no cover - the header check comes first
        raise ImageError(FailureCode.IMAGE_TOO_LARGE, "the image is too large to decode") from error
    except MemoryError as error:
        raise ImageError(FailureCode.IMAGE_TOO_LARGE, "the image is too large to decode in memory") from error
    except DECODE_ERRORS as error:
        raise ImageError(FailureCode.CORRUPT_IMAGE, f"the {fmt.value} data is truncated or damaged") from error


def _decodes_with_vips(header: Header, shrink_to: Size | None, *, to_srgb: bool) -> bool:
    """Which decoder, by measurement (docs/benchmarks.md): libvips inflates PNG about 2× faster
    than Pillow; for a downscale, libvips' shrink-on-load with a gap of 2 before Lanczos is as fast
    as Pillow's JPEG draft to the target (which scores 33–45 dB against a full decode on detailed
    photographs, libvips 50–55), and libwebp decodes at a fraction of the size in a fraction of
    the time (Pillow cannot ask it to). Pillow decodes the rest as fast or faster (AVIF, a JPEG
    at full size). libvips also does what Pillow cannot: colour conversion with littlecms while
    decoding, and 16-bit samples rounded to 8 bits (Pillow drops the low byte: a bias of half a
    level, and visible steps in smooth gradients once edited)."""
    if to_srgb or header.format is SourceFormat.PNG:
        return True
    if header.format in (SourceFormat.JPEG, SourceFormat.WEBP):
        return shrink_to is not None
    return header.format is SourceFormat.TIFF and _bits_per_sample(header.image) > 8


def _decode_with_vips(
    header: Header, shrink_to: Size | None, region: Box | None, *, to_srgb: bool, gap: float
) -> Image.Image:
    """The pixels decoded by libvips' loader for the sniffed format (never another one) and, when
    the first step downscales, resized by libvips to exactly its size: shrunk while decoding where
    the format allows (JPEG, WebP) by a factor that leaves at least `gap` for the Lanczos-3 reduce
    after it (2, as libvips' own thumbnail does for JPEG); converted to sRGB when asked (on the
    small image), 8 bits a sample; handed to Pillow with the header's metadata."""
    loader = _VIPS_LOADERS[header.format]
    options: dict[str, object] = {"access": "sequential", "fail_on": "truncated"}
    target = _raw(header, shrink_to) if shrink_to is not None else None
    if target is not None and region is None:
        # Shrinking while decoding would move the region's pixels: a cut region is resized after.
        options |= _shrink_on_load(header, target, gap)
    try:
        vips = getattr(pyvips.Image, loader)(header.data, **options)
        # What the loaded pixels stand for: a JPEG shrunk by s has ⌊W/s⌋ columns for W/s (libwebp
        # scales the whole image to the size it hands over).
        span: tuple[float, float] = (vips.width, vips.height)
        if isinstance(shrink := options.get("shrink"), int):
            span = (header.image.size[0] / shrink, header.image.size[1] / shrink)
        if region is not None:
            vips = vips.crop(region[0], region[1], region[2] - region[0], region[3] - region[1])
            span = (vips.width, vips.height)
        if target is not None and (vips.width, vips.height) != target:
            vips = _resized(vips, target, span)
        if to_srgb:
            fallback = "cmyk" if vips.interpretation == "cmyk" else "srgb"
            vips = vips.icc_transform("srgb", embedded=True, input_profile=fallback, intent="relative")
        if vips.format != "uchar":
            # 16-bit samples to 8, rounded (65535 → 255, 32768 → 128): no clipping, no bias.
            vips = vips.linear(1 / 257, 0.5).cast("uchar") if vips.format == "ushort" else vips.cast("uchar")
        mode = _VIPS_MODES[vips.bands]
        image = Image.frombytes(mode, (vips.width, vips.height), vips.write_to_memory())
    except pyvips.Error as error:
        raise ImageError(
            FailureCode.CORRUPT_IMAGE, f"the {header.format.value} data is truncated or damaged"
        ) from error
    except KeyError as error:
        raise ImageError(
            FailureCode.UNSUPPORTED_IMAGE, f"the {header.format.value} has {vips.bands} channels; 1 to 4 are supported"
        ) from error
    image.info = dict(header.image.info)
    if "transparency" in image.info and mode in ("RGBA", "LA"):
        del image.info["transparency"]  # libvips already turned it into an alpha channel
    if to_srgb:
        image.info.pop("icc_profile", None)  # the pixels are sRGB now
    return image


def _shrink_on_load(header: Header, target: Size, gap: float) -> dict[str, object]:
    """The loader's option that shrinks while decoding, leaving at least `gap` for Lanczos."""
    width, height = header.image.size
    factor = min(width / max(1, target[0]), height / max(1, target[1])) / gap
    if factor < 2:
        return {}
    if header.format is SourceFormat.JPEG:
        return {"shrink": max(shrink for shrink in (2, 4, 8) if shrink <= factor)}
    if header.format is SourceFormat.WEBP:
        return {"scale": 1 / int(factor)}
    return {}


def _resized(vips: pyvips.Image, size: Size, span: tuple[float, float]) -> pyvips.Image:
    """Lanczos 3 to exactly `size` (libvips box-shrinks first where that leaves a gap of 2),
    premultiplied so that transparent pixels do not bleed into their neighbours. `span` is the
    extent of the source the pixels stand for: libvips drops the last, partial block of a JPEG
    shrunk on load (1000×750 by 8 is 125×93, for 93.75 rows), so the edge pixels are repeated
    into the missing fraction and the scale is taken from the span, not from the pixels (else the
    result stretches by up to a block: 0.8% there, a visible shift at the far edge)."""
    whole = (math.ceil(span[0]), math.ceil(span[1]))
    if (vips.width, vips.height) != whole:
        vips = vips.embed(0, 0, whole[0], whole[1], extend="copy")
    premultiplied = vips.hasalpha()
    sample = vips.format
    if premultiplied:
        vips = vips.premultiply()
    vips = vips.resize(size[0] / span[0], vscale=size[1] / span[1], kernel="lanczos3")
    if (vips.width, vips.height) != size:
        vips = vips.crop(0, 0, size[0], size[1])  # the repeated fraction's last pixel
    return vips.unpremultiply().cast(sample) if premultiplied else vips


def shrink(image: Image.Image, size: Size) -> Image.Image:
    """A decoded image scaled down to exactly `size` by libvips, as the decoder scales (Lanczos 3
    after a box shrink that leaves a gap of 2, premultiplied): for the variants that share one
    decode, several times faster than Pillow's Lanczos from the shared image (bench.variants_bench)."""
    if image.mode not in _VIPS_BANDS:
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    vips = pyvips.Image.new_from_memory(image.tobytes(), image.width, image.height, _VIPS_BANDS[image.mode], "uchar")
    resized = _resized(vips, size, (image.width, image.height))
    return Image.frombytes(image.mode, size, resized.write_to_memory())


_VIPS_BANDS = {mode: bands for bands, mode in _VIPS_MODES.items()}


def _raw(header: Header, upright: Size) -> Size:
    """An upright size in the stored image's orientation."""
    return (upright[1], upright[0]) if header.orientation in _SWAPS_AXES else upright


def _bits_per_sample(image: Image.Image) -> int:
    tags = getattr(image, "tag_v2", None)
    bits = tags.get(_BITS_PER_SAMPLE_TAG) if tags is not None else None
    if isinstance(bits, tuple):
        return max((value for value in bits if isinstance(value, int)), default=8)
    return bits if isinstance(bits, int) else 8


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
    except DECODE_ERRORS:
        return 1  # unreadable EXIF: leave the image as stored
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _too_large(limits: ImageLimits, detail: str = "") -> ImageError:
    megapixels = limits.max_pixels / 1_000_000
    return ImageError(FailureCode.IMAGE_TOO_LARGE, f"the image is over the {megapixels:g} megapixel limit{detail}")
