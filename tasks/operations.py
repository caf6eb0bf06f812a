"""Image operations and output options: the typed values the worker runs, from the proto.

What a valid request is, proto/pixelflow/v1/task.proto says (buf.validate rules, checked on every
request by common.validation before a handler runs, and by the browser before it sends). This
module converts an already valid request into domain values and fills in the defaults the proto
leaves to the server; nothing here imports an image library. What no rule in the proto can
check (a crop box against the image's size) is the worker's.

Decisions that the proto leaves open:

- Colours are "#rgb", "#rrggbb" or "#rrggbbaa" (case-insensitive); empty means "the default".
- ``lossless`` needs an explicit format that has a lossless mode: WebP and AVIF (encoded
  losslessly), PNG and TIFF (always lossless, so the flag changes nothing). JPEG and GIF (palette
  quantisation) are refused, and so is an unspecified format (it depends on the source).
- ``quality`` is 0 (the format's default) or 1–100. PNG, GIF and TIFF are always written
  losslessly and ignore it, as does a lossless WebP/AVIF.
- An ``adjust`` with nothing set is accepted and does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, ClassVar

from pixelflow.v1 import task_pb2

from common.validation import check

# The area of the image the worker writes (it plans sizes before decoding): a limit on results,
# not on requests, so it is the worker's and not the proto's.
MAX_OUTPUT_PIXELS = 100_000_000
SHARPEN_SIGMA_DEFAULT, SHARPEN_AMOUNT_DEFAULT = 1.0, 100.0

RGBA = tuple[int, int, int, int]


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


# ---- parsing a valid request ------------------------------------------------------------------

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


def parse_operations(operations: Sequence[task_pb2.Operation], path: str = "operations") -> list[Op]:
    """The domain value of every operation of a request that passed its proto rules (each is
    checked again here, so that nothing unchecked reaches the worker: InvalidArgument naming
    `path[index]`)."""
    parsed = []
    for index, op in enumerate(operations):
        check(op, f"{path}[{index}]")
        kind = op.WhichOneof("kind")
        assert kind is not None  # the oneof is required
        parsed.append(_PARSERS[kind](getattr(op, kind)))
    return parsed


def _parse_resize(resize: task_pb2.Resize) -> Resize:
    return Resize(
        width=resize.width,
        height=resize.height,
        fit=_FITS[resize.fit],
        allow_upscale=resize.allow_upscale,
        background=parse_colour(resize.background),
        gravity=_GRAVITIES[resize.gravity],
    )


def _parse_crop(crop: task_pb2.Crop) -> Crop:
    if not crop.HasField("left"):
        return Crop(width=crop.width, height=crop.height, gravity=_GRAVITIES[crop.gravity])
    return Crop(width=crop.width, height=crop.height, left=crop.left, top=crop.top)


def _parse_rotate(rotate: task_pb2.Rotate) -> Rotate:
    return Rotate(angle=rotate.angle, background=parse_colour(rotate.background))


def _parse_flip(flip: task_pb2.Flip) -> Flip:
    return Flip(direction=_DIRECTIONS[flip.direction])


def _parse_sharpen(sharpen: task_pb2.Sharpen) -> Sharpen:
    return Sharpen(sigma=sharpen.sigma or SHARPEN_SIGMA_DEFAULT, amount=sharpen.amount or SHARPEN_AMOUNT_DEFAULT)


def _parse_adjust(adjust: task_pb2.Adjust) -> Adjust:
    return Adjust(
        **{name: getattr(adjust, name) for name in ("brightness", "contrast", "saturation") if adjust.HasField(name)}
    )


def _parse_grayscale(_grayscale: task_pb2.Grayscale) -> Grayscale:
    return Grayscale()


def _parse_blur(blur: task_pb2.Blur) -> Blur:
    return Blur(sigma=blur.sigma)


def _parse_watermark(watermark: task_pb2.Watermark) -> Watermark:
    position = watermark.position or task_pb2.GRAVITY_SOUTH_EAST
    return Watermark(
        upload_id=watermark.upload_id,
        position=_GRAVITIES[position],
        margin=watermark.margin,
        opacity=watermark.opacity or 1.0,
        scale=watermark.scale or None,
    )


# One parser per `Operation.kind` oneof field (a unit test keeps this, the proto and the
# worker's registry naming the same set).
_PARSERS: Mapping[str, Callable[[Any], Op]] = {
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
    """The output options of a request that passed its proto rules (checked again here)."""
    check(output, "output")
    return OutputSpec(
        format=_FORMATS[output.format],
        quality=output.quality or None,
        lossless=output.lossless,
        keep_metadata=output.keep_metadata,
        keep_color_profile=output.keep_color_profile,
        first_frame_only=output.first_frame_only,
    )


def parse_colour(text: str) -> RGBA | None:
    """A valid "#rgb", "#rrggbb" or "#rrggbbaa" (the proto's `colour` rule) as RGBA; None for empty."""
    if not text:
        return None
    digits = text[1:]
    if len(digits) == 3:
        digits = "".join(2 * digit for digit in digits)
    if len(digits) == 6:
        digits += "ff"
    red, green, blue, alpha = (int(digits[i : i + 2], 16) for i in range(0, 8, 2))
    return (red, green, blue, alpha)
