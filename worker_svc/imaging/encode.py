"""Writing the result: the format's mode, its options, and metadata only when asked for."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PIL import Image, ImageFile

from tasks.failures import FailureCode
from tasks.operations import OutputFormat, OutputSpec
from worker_svc.imaging import colour, modes
from worker_svc.imaging.errors import ImageError
from worker_svc.imaging.sniff import SourceFormat
from worker_svc.sizes import describe_size

CONTENT_TYPES: dict[OutputFormat, str] = {
    OutputFormat.JPEG: "image/jpeg",
    OutputFormat.PNG: "image/png",
    OutputFormat.WEBP: "image/webp",
    OutputFormat.AVIF: "image/avif",
    OutputFormat.GIF: "image/gif",
    OutputFormat.TIFF: "image/tiff",
}
_WRITABLE_SOURCES: dict[SourceFormat, OutputFormat] = {
    SourceFormat.JPEG: OutputFormat.JPEG,
    SourceFormat.PNG: OutputFormat.PNG,
    SourceFormat.WEBP: OutputFormat.WEBP,
    SourceFormat.AVIF: OutputFormat.AVIF,
    SourceFormat.GIF: OutputFormat.GIF,
    SourceFormat.TIFF: OutputFormat.TIFF,
}
HAS_ALPHA = frozenset({OutputFormat.PNG, OutputFormat.WEBP, OutputFormat.AVIF, OutputFormat.GIF, OutputFormat.TIFF})
DEFAULT_QUALITY = {OutputFormat.JPEG: 85, OutputFormat.WEBP: 80, OutputFormat.AVIF: 60}


def output_format(spec: OutputSpec, source: SourceFormat) -> OutputFormat:
    """The requested format; else the source's own when it can be written; else JPEG."""
    return spec.format or _WRITABLE_SOURCES.get(source, OutputFormat.JPEG)


@dataclass(frozen=True)
class Metadata:
    """What `keep_metadata` carries over (EXIF already says "upright" when the image was turned)."""

    exif: bytes | None = None
    icc_profile: bytes | None = None
    xmp: bytes | None = None

    @classmethod
    def kept(cls, image: Image.Image, spec: OutputSpec) -> Metadata | None:
        """What `spec` keeps of the decoded image's: everything, its colour profile only
        (converted pixels carry none: colour.py), or nothing."""
        if spec.keep_metadata:
            return cls.of(image)
        if spec.keep_color_profile and (profile := colour.source_profile(image)) is not None:
            return cls(icc_profile=profile)
        return None

    @classmethod
    def of(cls, image: Image.Image) -> Metadata:
        exif = image.getexif()
        icc, xmp = image.info.get("icc_profile"), image.info.get("xmp")
        return cls(
            exif=exif.tobytes() if len(exif) else None,
            icc_profile=icc if isinstance(icc, bytes) and icc else None,
            xmp=xmp if isinstance(xmp, bytes) and xmp else None,
        )


@dataclass(frozen=True)
class Frames:
    """What follows the first frame of an animation (GIF or WebP), each a whole picture."""

    rest: list[Image.Image]
    durations: list[int]  # ms, one per frame, the first included
    loop: int


def encode(
    image: Image.Image,
    fmt: OutputFormat,
    spec: OutputSpec,
    metadata: Metadata | None,
    *,
    max_bytes: int,
    frames: Frames | None = None,
) -> bytes:
    """`image` written as `fmt`; with `frames`, as an animation starting with it."""
    if isinstance(image, ImageFile.ImageFile):
        # The decoded source itself, untouched by any operation: it still carries the file's
        # own tags (a TIFF's tag_v2, which Pillow's TIFF writer copies: Artist, Make, Model,
        # XMP, IPTC …). A plain copy has the pixels only.
        image = image.copy()
    image = _ENCODERS[fmt].prepare(image)
    options = _ENCODERS[fmt].options(spec, spec.quality or DEFAULT_QUALITY.get(fmt, 0))
    if (transparency := image.info.get("transparency")) is not None and fmt is OutputFormat.GIF:
        options["transparency"] = transparency
    image.info = {}  # nothing from the source leaks through a plugin that reads `info`
    if frames is not None:
        rest = [_ENCODERS[fmt].prepare(picture) for picture in frames.rest]
        options |= {"save_all": True, "append_images": rest, "duration": frames.durations, "loop": frames.loop}
        if fmt is OutputFormat.GIF:
            options["disposal"] = 2  # each frame replaces the last: the frames are whole pictures
    if metadata is not None:
        options |= {
            key: value
            for key, value in (("exif", metadata.exif), ("icc_profile", metadata.icc_profile), ("xmp", metadata.xmp))
            if value is not None and key in _ENCODERS[fmt].metadata
        }
    buffer = _BoundedBuffer(max_bytes)
    image.save(buffer, format=fmt.value.upper(), **options)
    return buffer.getvalue()


def best_candidates(image: Image.Image, spec: OutputSpec) -> list[OutputFormat]:
    """What `best` tries, most likely smallest first (so that the later ones stop early)."""
    if spec.lossless:
        return [OutputFormat.WEBP, OutputFormat.AVIF, OutputFormat.PNG]
    few_colours = image.getcolors(256) is not None
    last = OutputFormat.PNG if modes.has_alpha(image) or few_colours else OutputFormat.JPEG
    return [OutputFormat.AVIF, OutputFormat.WEBP, last]


def encode_best(
    image: Image.Image, spec: OutputSpec, metadata: Metadata | None, *, max_bytes: int
) -> tuple[bytes, OutputFormat]:
    """The smallest encoding among `best_candidates`. Each candidate after the first may only be
    smaller than the best so far: its encoder stops as soon as it writes past that."""
    best: tuple[bytes, OutputFormat] | None = None
    too_large: ImageError | None = None
    for fmt in best_candidates(image, spec):
        limit = max_bytes if best is None else min(max_bytes, len(best[0]) - 1)
        try:
            data = encode(image, fmt, spec, metadata, max_bytes=limit)
        except ImageError as exc:
            if exc.code is not FailureCode.OUTPUT_TOO_LARGE:
                raise
            too_large = too_large or exc
            continue
        best = (data, fmt)
    if best is None:
        assert too_large is not None
        raise too_large
    return best


class _BoundedBuffer(io.BytesIO):
    """Refuses the write that would take it past `limit`: the encoder stops there, so no result
    over the limit is ever held in memory whole."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self._limit = limit

    def write(self, data: Any, /) -> int:
        if self.tell() + memoryview(data).nbytes > self._limit:
            raise ImageError(
                FailureCode.OUTPUT_TOO_LARGE,
                f"the encoded result is over the {describe_size(self._limit)} limit of a result; ask for a smaller "
                "size, a lower quality or a format that compresses better (JPEG, WebP, AVIF)",
            )
        return super().write(data)


@dataclass(frozen=True)
class _Encoder:
    prepare: Callable[[Image.Image], Image.Image]
    options: Callable[[OutputSpec, int], dict[str, Any]]
    metadata: frozenset[str]


def _keep(image: Image.Image) -> Image.Image:
    return image


def _rgb_or_rgba(image: Image.Image) -> Image.Image:
    return image.convert("RGBA" if modes.has_alpha(image) else "RGB")


def _palette(image: Image.Image) -> Image.Image:
    if not modes.has_alpha(image):
        return image.convert("P", palette=Image.Palette.ADAPTIVE) if image.mode == "RGB" else image
    # GIF has one fully transparent palette entry: quantise the colours, then mark it.
    rgba = image.convert("RGBA")
    transparent = rgba.getchannel("A").point(lambda alpha: 255 if alpha < 128 else 0)
    paletted = modes.without_alpha(rgba).convert("RGB").quantize(255)
    paletted.paste(255, mask=transparent)
    paletted.info["transparency"] = 255
    return paletted


_ENCODERS: dict[OutputFormat, _Encoder] = {
    OutputFormat.JPEG: _Encoder(
        prepare=modes.without_alpha,
        options=lambda _spec, quality: {"quality": quality},
        metadata=frozenset({"exif", "icc_profile", "xmp"}),
    ),
    OutputFormat.PNG: _Encoder(
        prepare=_keep,
        options=lambda _spec, _quality: {"compress_level": 6},
        metadata=frozenset({"exif", "icc_profile"}),
    ),
    OutputFormat.WEBP: _Encoder(
        prepare=_rgb_or_rgba,
        options=lambda spec, quality: {"lossless": True, "quality": 80} if spec.lossless else {"quality": quality},
        metadata=frozenset({"exif", "icc_profile", "xmp"}),
    ),
    OutputFormat.AVIF: _Encoder(
        prepare=_rgb_or_rgba,
        # Pillow does not expose libavif's identity matrix, so "lossless" is quality 100 at 4:4:4:
        # the AV1 side is lossless, the RGB→YCbCr rounding is not (±1–2 levels).
        options=lambda spec, quality: (
            {"quality": 100, "subsampling": "4:4:4", "speed": 6} if spec.lossless else {"quality": quality, "speed": 8}
        ),
        metadata=frozenset({"exif", "icc_profile", "xmp"}),
    ),
    OutputFormat.GIF: _Encoder(
        prepare=_palette,
        options=lambda _spec, _quality: {},
        metadata=frozenset(),
    ),
    OutputFormat.TIFF: _Encoder(
        prepare=_keep,
        options=lambda _spec, _quality: {"compression": "tiff_adobe_deflate"},
        metadata=frozenset({"exif", "icc_profile"}),
    ),
}
