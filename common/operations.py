"""Image operations and output options: parsed from the proto and checked completely, up front.

The API calls this before a task is stored, so a bad request never reaches the queue; the worker
gets the same typed values back. Nothing here imports an image library.

Decisions that the proto leaves open:

- Colours are "#rgb", "#rrggbb" or "#rrggbbaa" (case-insensitive); empty means "the default".
- ``lossless`` needs an explicit format that has a lossless mode: WebP and AVIF (encoded
  losslessly), PNG and TIFF (always lossless, so the flag changes nothing). JPEG and GIF (palette
  quantisation) are refused, and so is an unspecified format (it depends on the source).
- ``quality`` is 0 (the format's default) or 1–100. PNG, GIF and TIFF are always written
  losslessly and ignore it, as does a lossless WebP/AVIF.
- An ``adjust`` with nothing set is accepted and does nothing.
- A crop box is checked against the image in the worker (the size is not known here).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar, TypeVar

from pixelflow.v1 import task_pb2

from common.errors import InvalidArgument
from common.ids import is_id

# ---- limits: the one place they are defined ---------------------------------------------------
MAX_OPERATIONS = 20
MAX_TARGET_DIMENSION = 10_000  # px per side, for any width/height a request names (so ≤ 100 MP)
MAX_OUTPUT_PIXELS = 100_000_000  # area of the image the worker writes (it plans sizes before decoding)
BLUR_SIGMA_MIN, BLUR_SIGMA_MAX = 0.3, 100.0
SHARPEN_SIGMA_MIN, SHARPEN_SIGMA_MAX, SHARPEN_SIGMA_DEFAULT = 0.3, 10.0, 1.0
SHARPEN_AMOUNT_MAX, SHARPEN_AMOUNT_DEFAULT = 1000.0, 100.0
ADJUST_MIN, ADJUST_MAX = 0.0, 10.0
ROTATE_ANGLE_MAX = 360.0
QUALITY_MIN, QUALITY_MAX = 1, 100
WATERMARK_MARGIN_MAX = 1000

RGBA = tuple[int, int, int, int]
_K = TypeVar("_K")
_V = TypeVar("_V")
_COLOUR = re.compile(r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})")


class ResizeFit(StrEnum):
    CONTAIN = "contain"
    COVER = "cover"
    FILL = "fill"
    INSIDE = "inside"
    OUTSIDE = "outside"


class Gravity(StrEnum):
    CENTER = "center"
    NORTH = "north"
    NORTH_EAST = "north_east"
    EAST = "east"
    SOUTH_EAST = "south_east"
    SOUTH = "south"
    SOUTH_WEST = "south_west"
    WEST = "west"
    NORTH_WEST = "north_west"
    SMART = "smart"  # placed by the image's content (worker_svc.imaging.attention)


class FlipDirection(StrEnum):
    HORIZONTAL = "horizontal"
    VERTICAL = "vertical"


class OutputFormat(StrEnum):
    JPEG = "jpeg"
    PNG = "png"
    WEBP = "webp"
    AVIF = "avif"
    GIF = "gif"
    TIFF = "tiff"
    BEST = "best"  # the smallest of several, chosen per image (worker_svc.imaging.encode.encode_best)


LOSSLESS_FORMATS = frozenset(
    {OutputFormat.WEBP, OutputFormat.AVIF, OutputFormat.PNG, OutputFormat.TIFF, OutputFormat.BEST}
)


@dataclass(frozen=True)
class Resize:
    kind: ClassVar[str] = "resize"
    width: int  # 0: derived from height, keeping the aspect ratio
    height: int  # 0: derived from width
    fit: ResizeFit = ResizeFit.CONTAIN
    allow_upscale: bool = False
    background: RGBA | None = None
    gravity: Gravity = Gravity.CENTER  # what COVER keeps of the overflow


@dataclass(frozen=True)
class Crop:
    kind: ClassVar[str] = "crop"
    width: int
    height: int
    left: int | None = None  # left and top are both set (a box) or both None (gravity)
    top: int | None = None
    gravity: Gravity = Gravity.CENTER


@dataclass(frozen=True)
class Rotate:
    kind: ClassVar[str] = "rotate"
    angle: float  # clockwise, degrees
    background: RGBA | None = None


@dataclass(frozen=True)
class Flip:
    kind: ClassVar[str] = "flip"
    direction: FlipDirection


@dataclass(frozen=True)
class Grayscale:
    kind: ClassVar[str] = "grayscale"


@dataclass(frozen=True)
class Blur:
    kind: ClassVar[str] = "blur"
    sigma: float


@dataclass(frozen=True)
class Sharpen:
    kind: ClassVar[str] = "sharpen"
    sigma: float = SHARPEN_SIGMA_DEFAULT
    amount: float = SHARPEN_AMOUNT_DEFAULT  # percent


@dataclass(frozen=True)
class Adjust:
    kind: ClassVar[str] = "adjust"
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0


@dataclass(frozen=True)
class Watermark:
    kind: ClassVar[str] = "watermark"
    upload_id: str  # the caller's upload (api_svc checks it is theirs)
    position: Gravity = Gravity.SOUTH_EAST
    margin: int = 0
    opacity: float = 1.0
    scale: float | None = None  # of the image's width; None: the watermark's own size


Op = Resize | Crop | Rotate | Flip | Grayscale | Blur | Sharpen | Adjust | Watermark

# The proto's `Operation.kind` oneof field names → the operation each becomes.
OPERATION_KINDS: Mapping[str, type[Op]] = {
    cls.kind: cls for cls in (Resize, Crop, Rotate, Flip, Grayscale, Blur, Sharpen, Adjust, Watermark)
}


@dataclass(frozen=True)
class OutputSpec:
    format: OutputFormat | None = None  # None: the source's format when writable, else JPEG
    quality: int | None = None  # None: the format's default
    lossless: bool = False
    keep_metadata: bool = False
    keep_color_profile: bool = False  # the source's colours and profile, not converted to sRGB
    first_frame_only: bool = False  # an animated source written as its first frame


# ---- parsing -----------------------------------------------------------------------------------

_FITS = {
    task_pb2.RESIZE_FIT_UNSPECIFIED: ResizeFit.CONTAIN,
    task_pb2.RESIZE_FIT_CONTAIN: ResizeFit.CONTAIN,
    task_pb2.RESIZE_FIT_COVER: ResizeFit.COVER,
    task_pb2.RESIZE_FIT_FILL: ResizeFit.FILL,
    task_pb2.RESIZE_FIT_INSIDE: ResizeFit.INSIDE,
    task_pb2.RESIZE_FIT_OUTSIDE: ResizeFit.OUTSIDE,
}
_GRAVITIES = {
    task_pb2.GRAVITY_UNSPECIFIED: Gravity.CENTER,
    task_pb2.GRAVITY_CENTER: Gravity.CENTER,
    task_pb2.GRAVITY_NORTH: Gravity.NORTH,
    task_pb2.GRAVITY_NORTH_EAST: Gravity.NORTH_EAST,
    task_pb2.GRAVITY_EAST: Gravity.EAST,
    task_pb2.GRAVITY_SOUTH_EAST: Gravity.SOUTH_EAST,
    task_pb2.GRAVITY_SOUTH: Gravity.SOUTH,
    task_pb2.GRAVITY_SOUTH_WEST: Gravity.SOUTH_WEST,
    task_pb2.GRAVITY_WEST: Gravity.WEST,
    task_pb2.GRAVITY_NORTH_WEST: Gravity.NORTH_WEST,
    task_pb2.GRAVITY_SMART: Gravity.SMART,
}
_DIRECTIONS = {
    task_pb2.FLIP_DIRECTION_HORIZONTAL: FlipDirection.HORIZONTAL,
    task_pb2.FLIP_DIRECTION_VERTICAL: FlipDirection.VERTICAL,
}
_FORMATS = {
    task_pb2.IMAGE_FORMAT_UNSPECIFIED: None,
    task_pb2.IMAGE_FORMAT_JPEG: OutputFormat.JPEG,
    task_pb2.IMAGE_FORMAT_PNG: OutputFormat.PNG,
    task_pb2.IMAGE_FORMAT_WEBP: OutputFormat.WEBP,
    task_pb2.IMAGE_FORMAT_AVIF: OutputFormat.AVIF,
    task_pb2.IMAGE_FORMAT_GIF: OutputFormat.GIF,
    task_pb2.IMAGE_FORMAT_TIFF: OutputFormat.TIFF,
    task_pb2.IMAGE_FORMAT_BEST: OutputFormat.BEST,
}


def parse_operations(operations: Sequence[task_pb2.Operation]) -> list[Op]:
    """Every operation, checked; raises InvalidArgument naming the first bad field."""
    if len(operations) > MAX_OPERATIONS:
        raise InvalidArgument(
            f"at most {MAX_OPERATIONS} operations are allowed, got {len(operations)}", field="operations"
        )
    return [_parse_operation(operation, f"operations[{index}]") for index, operation in enumerate(operations)]


def _parse_operation(operation: task_pb2.Operation, path: str) -> Op:
    kind = operation.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument(f"an operation must set one of: {', '.join(OPERATION_KINDS)}", field=path)
    parser = _PARSERS.get(kind)
    if parser is None:  # pragma: no cover - the proto grew an operation this module does not know
        raise InvalidArgument(f"unknown operation {kind!r}", field=path)
    return parser(getattr(operation, kind), f"{path}.{kind}")


def _parse_resize(resize: task_pb2.Resize, path: str) -> Resize:
    if resize.width == 0 and resize.height == 0:
        raise InvalidArgument("set width, height or both (above 0)", field=f"{path}.width")
    width = _dimension(resize.width, f"{path}.width")
    height = _dimension(resize.height, f"{path}.height")
    fit = _enum(_FITS, resize.fit, f"{path}.fit")
    gravity = _enum(_GRAVITIES, resize.gravity, f"{path}.gravity")
    if resize.gravity != task_pb2.GRAVITY_UNSPECIFIED and fit is not ResizeFit.COVER:
        raise InvalidArgument("gravity applies to fit COVER only (what the crop keeps)", field=f"{path}.gravity")
    return Resize(
        width=width,
        height=height,
        fit=fit,
        allow_upscale=resize.allow_upscale,
        background=parse_colour(resize.background, f"{path}.background"),
        gravity=gravity,
    )


def _parse_crop(crop: task_pb2.Crop, path: str) -> Crop:
    for name, value in (("width", crop.width), ("height", crop.height)):
        if value == 0:
            raise InvalidArgument(f"crop {name} must be above 0", field=f"{path}.{name}")
        _dimension(value, f"{path}.{name}")
    has_left, has_top = crop.HasField("left"), crop.HasField("top")
    if has_left != has_top:
        missing = "top" if has_left else "left"
        raise InvalidArgument(
            "give both left and top for a crop box, or neither for gravity", field=f"{path}.{missing}"
        )
    gravity = _enum(_GRAVITIES, crop.gravity, f"{path}.gravity")
    if has_left and crop.gravity != task_pb2.GRAVITY_UNSPECIFIED:
        raise InvalidArgument("a crop takes either a box (left, top) or a gravity, not both", field=f"{path}.gravity")
    if not has_left:
        return Crop(width=crop.width, height=crop.height, gravity=gravity)
    return Crop(
        width=crop.width,
        height=crop.height,
        left=_dimension(crop.left, f"{path}.left"),
        top=_dimension(crop.top, f"{path}.top"),
    )


def _parse_rotate(rotate: task_pb2.Rotate, path: str) -> Rotate:
    angle = _bounded(rotate.angle, -ROTATE_ANGLE_MAX, ROTATE_ANGLE_MAX, f"{path}.angle")
    return Rotate(angle=angle, background=parse_colour(rotate.background, f"{path}.background"))


def _parse_flip(flip: task_pb2.Flip, path: str) -> Flip:
    if flip.direction not in _DIRECTIONS:
        raise InvalidArgument("flip direction must be HORIZONTAL or VERTICAL", field=f"{path}.direction")
    return Flip(direction=_DIRECTIONS[flip.direction])


def _parse_sharpen(sharpen: task_pb2.Sharpen, path: str) -> Sharpen:
    sigma, amount = SHARPEN_SIGMA_DEFAULT, SHARPEN_AMOUNT_DEFAULT
    if sharpen.sigma != 0 or not math.isfinite(sharpen.sigma):
        sigma = _bounded(sharpen.sigma, SHARPEN_SIGMA_MIN, SHARPEN_SIGMA_MAX, f"{path}.sigma")
    if sharpen.amount != 0 or not math.isfinite(sharpen.amount):
        amount = _bounded(sharpen.amount, 0.0, SHARPEN_AMOUNT_MAX, f"{path}.amount")
    return Sharpen(sigma=sigma, amount=amount)


def _parse_adjust(adjust: task_pb2.Adjust, path: str) -> Adjust:
    values = {
        name: _bounded(getattr(adjust, name), ADJUST_MIN, ADJUST_MAX, f"{path}.{name}")
        for name in ("brightness", "contrast", "saturation")
        if adjust.HasField(name)
    }
    return Adjust(**values)


def _parse_grayscale(_grayscale: task_pb2.Grayscale, _path: str) -> Grayscale:
    return Grayscale()


def _parse_blur(blur: task_pb2.Blur, path: str) -> Blur:
    return Blur(sigma=_bounded(blur.sigma, BLUR_SIGMA_MIN, BLUR_SIGMA_MAX, f"{path}.sigma"))


def _parse_watermark(watermark: task_pb2.Watermark, path: str) -> Watermark:
    if not is_id(watermark.upload_id):
        raise InvalidArgument(
            "upload_id must be the id of one of your uploads (32 hexadecimal characters, from CreateUpload)",
            field=f"{path}.upload_id",
        )
    if watermark.position == task_pb2.GRAVITY_SMART:
        raise InvalidArgument("a watermark is placed by a fixed position, not SMART", field=f"{path}.position")
    position = (
        Gravity.SOUTH_EAST
        if watermark.position == task_pb2.GRAVITY_UNSPECIFIED
        else _enum(_GRAVITIES, watermark.position, f"{path}.position")
    )
    if watermark.margin > WATERMARK_MARGIN_MAX:
        raise InvalidArgument(
            f"margin must be 0–{WATERMARK_MARGIN_MAX} px, got {watermark.margin}", field=f"{path}.margin"
        )
    opacity = 1.0
    if watermark.opacity != 0 or not math.isfinite(watermark.opacity):
        opacity = _fraction(watermark.opacity, f"{path}.opacity")
    scale = None
    if watermark.scale != 0 or not math.isfinite(watermark.scale):
        scale = _fraction(watermark.scale, f"{path}.scale")
    return Watermark(
        upload_id=watermark.upload_id, position=position, margin=watermark.margin, opacity=opacity, scale=scale
    )


def _fraction(value: float, field: str) -> float:
    if not (math.isfinite(value) and 0 < value <= 1):
        raise InvalidArgument(f"{field.rsplit('.', 1)[-1]} must be above 0 and at most 1, got {value:g}", field=field)
    return value


# One validator per `Operation.kind` oneof field (a unit test keeps this, the proto and the
# worker's registry naming the same set).
_PARSERS: Mapping[str, Callable[[Any, str], Op]] = {
    "resize": _parse_resize,
    "crop": _parse_crop,
    "rotate": _parse_rotate,
    "flip": _parse_flip,
    "grayscale": _parse_grayscale,
    "blur": _parse_blur,
    "sharpen": _parse_sharpen,
    "adjust": _parse_adjust,
    "watermark": _parse_watermark,
}
VALIDATED_KINDS = frozenset(_PARSERS)


def parse_output(output: task_pb2.OutputOptions) -> OutputSpec:
    """The output options, checked; raises InvalidArgument naming the bad field."""
    fmt = _enum(_FORMATS, output.format, "output.format")
    if output.quality != 0 and not QUALITY_MIN <= output.quality <= QUALITY_MAX:
        raise InvalidArgument(
            f"quality must be {QUALITY_MIN}–{QUALITY_MAX} (or 0 for the format's default), got {output.quality}",
            field="output.quality",
        )
    if output.lossless and fmt is None:
        raise InvalidArgument(
            "lossless needs an explicit output format (WEBP, AVIF, PNG, TIFF or BEST)", field="output.format"
        )
    if output.lossless and fmt not in LOSSLESS_FORMATS:
        raise InvalidArgument(
            f"{fmt.name if fmt else 'this format'} has no lossless mode; use WEBP, AVIF, PNG or TIFF",
            field="output.lossless",
        )
    return OutputSpec(
        format=fmt,
        quality=output.quality or None,
        lossless=output.lossless,
        keep_metadata=output.keep_metadata,
        keep_color_profile=output.keep_color_profile,
        first_frame_only=output.first_frame_only,
    )


def parse_colour(text: str, field: str) -> RGBA | None:
    """ "#rgb", "#rrggbb" or "#rrggbbaa" as an RGBA tuple; None for empty."""
    if not text:
        return None
    if not _COLOUR.fullmatch(text):
        raise InvalidArgument(f'colour must be "#rgb", "#rrggbb" or "#rrggbbaa", got {text!r}', field=field)
    digits = text[1:]
    if len(digits) == 3:
        digits = "".join(2 * digit for digit in digits)
    if len(digits) == 6:
        digits += "ff"
    red, green, blue, alpha = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
    return (red, green, blue, alpha)


def _dimension(value: int, field: str) -> int:
    if value > MAX_TARGET_DIMENSION:
        raise InvalidArgument(f"must be at most {MAX_TARGET_DIMENSION} px, got {value}", field=field)
    return value


def _bounded(value: float, low: float, high: float, field: str) -> float:
    if not math.isfinite(value):
        raise InvalidArgument(f"must be a finite number, got {value}", field=field)
    if not low <= value <= high:
        raise InvalidArgument(f"must be between {low:g} and {high:g}, got {value:g}", field=field)
    return value


def _enum(table: Mapping[_K, _V], value: _K, field: str) -> _V:
    if value not in table:
        raise InvalidArgument(f"unknown value {value}", field=field)
    return table[value]
