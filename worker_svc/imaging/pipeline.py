"""decode (with limits) → the user's operations → encode: the one entry point, `process`."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from PIL import Image

from tasks.failures import FailureCode
from tasks.operations import Crop, Flip, Gravity, Grayscale, Op, OutputFormat, OutputSpec, Resize, Rotate, Watermark
from worker_svc.imaging import animation, geometry, modes
from worker_svc.imaging.decode import DECODE_ERRORS, Header, decode, open_header
from worker_svc.imaging.encode import (
    CONTENT_TYPES,
    HAS_ALPHA,
    Frames,
    Metadata,
    encode,
    encode_best,
    output_format,
)
from worker_svc.imaging.errors import ImageError
from worker_svc.imaging.geometry import Box, Size
from worker_svc.imaging.limits import ImageLimits
from worker_svc.imaging.steps import REGISTRY, StepContext


@dataclass(frozen=True)
class ProcessedImage:
    data: bytes
    width: int
    height: int
    format: OutputFormat
    content_type: str
    # decode_ms, process_ms, encode_ms
    timings: dict[str, float] = field(default_factory=dict)


def process(
    data: bytes,
    operations: Sequence[Op],
    output: OutputSpec,
    *,
    auto_orient: bool = True,
    limits: ImageLimits | None = None,
    watermarks: Mapping[str, bytes] | None = None,
    fast_shrink_on_load: bool = False,
) -> ProcessedImage:
    """Pure and synchronous (CPU-bound: run it in a worker thread or process). `watermarks`
    holds the encoded image of every watermark operation's upload, by upload id.
    `fast_shrink_on_load` trades quality for speed as imgproxy does (decode.py, _REDUCE_GAP).

    Raises ImageError for anything the input is to blame for; anything else is a bug.
    """
    limits = limits or ImageLimits()
    timings: dict[str, float] = {}
    with _timed(timings, "decode_ms"):
        marks = _watermark_images(operations, watermarks or {}, limits)
        header = open_header(data, limits, auto_orient=auto_orient)
        sizes = plan(operations, header.size, limits)
        fmt = output_format(output, header.format)
        # An animation's frames are decoded one by one while they are processed.
        if not (animated := animation.keeps_animation(header.frames, header.format, fmt, output)):
            region, operations, sizes = _leading_crop(operations, sizes, header)
            shrink_to = _shrink_target(operations, sizes)
            image = decode(
                header,
                shrink_to=shrink_to,
                region=region,
                keep_profile=output.keep_color_profile,
                fast_shrink=fast_shrink_on_load,
            )
            metadata = Metadata.kept(image, output)
            image = modes.normalise(image)
    if animated:
        return _process_animation(header, operations, sizes, fmt, output, limits, timings, marks)
    with _timed(timings, "process_ms"):
        # `best` keeps transparency: every candidate for an image with alpha can hold it.
        image = _apply(
            image, operations, sizes, output_has_alpha=fmt in HAS_ALPHA or fmt is OutputFormat.BEST, watermarks=marks
        )
    with _timed(timings, "encode_ms"):
        if fmt is OutputFormat.BEST:
            encoded, fmt = encode_best(image, output, metadata, max_bytes=limits.max_result_bytes)
        else:
            encoded = encode(image, fmt, output, metadata, max_bytes=limits.max_result_bytes)
    return ProcessedImage(encoded, image.width, image.height, fmt, CONTENT_TYPES[fmt], timings)


def _process_animation(  # noqa: PLR0917 - process()'s state, passed on once
    header: Header,
    operations: Sequence[Op],
    sizes: list[Size],
    fmt: OutputFormat,
    output: OutputSpec,
    limits: ImageLimits,
    timings: dict[str, float],
    marks: Mapping[str, Image.Image],
) -> ProcessedImage:
    """Every frame decoded, processed and kept; then one animated encode (animation.py)."""
    animation.check_size(header.frames, sizes[-1], limits)
    steady = animation.steady(operations)
    pictures: list[Image.Image] = []
    durations: list[int] = []
    with _timed(timings, "process_ms"):
        try:
            for frame, duration in animation.frames(header.image):
                pictures.append(_apply(frame, steady, sizes, output_has_alpha=True, watermarks=marks))
                durations.append(duration)
        except MemoryError as error:
            raise ImageError(FailureCode.IMAGE_TOO_LARGE, "the animation is too large to decode in memory") from error
        except DECODE_ERRORS as error:
            raise ImageError(FailureCode.CORRUPT_IMAGE, f"a frame of the {header.format.value} is damaged") from error
    loop = header.image.info.get("loop", 0)
    frames = Frames(pictures[1:], durations, loop if isinstance(loop, int) else 0)
    with _timed(timings, "encode_ms"):
        encoded = encode(pictures[0], fmt, output, None, max_bytes=limits.max_result_bytes, frames=frames)
    width, height = pictures[0].size
    return ProcessedImage(encoded, width, height, fmt, CONTENT_TYPES[fmt], timings)


def _watermark_images(
    operations: Sequence[Op], encoded: Mapping[str, bytes], limits: ImageLimits
) -> dict[str, Image.Image]:
    """Each watermark's image, decoded under a source's limits but at most WATERMARK_MAX_PIXELS
    (a logo, not a second source: the task's memory budget is one source's), as RGBA."""
    limits = dataclasses.replace(limits, max_pixels=min(limits.max_pixels, WATERMARK_MAX_PIXELS))
    marks: dict[str, Image.Image] = {}
    for op in operations:
        if not isinstance(op, Watermark) or op.upload_id in marks:
            continue
        if op.upload_id not in encoded:
            raise ImageError(FailureCode.INVALID_OPERATION, f"the watermark upload {op.upload_id} was not given")
        try:
            header = open_header(encoded[op.upload_id], limits, auto_orient=True)
            marks[op.upload_id] = modes.normalise(decode(header, shrink_to=None)).convert("RGBA")
        except ImageError as error:
            raise ImageError(error.code, f"the watermark ({op.upload_id}): {error.message}") from error
    return marks


WATERMARK_MAX_PIXELS = 4_000_000


def plan(operations: Sequence[Op], size: Size, limits: ImageLimits) -> list[Size]:
    """The size before each step and, last, the result's; over a limit is OUTPUT_TOO_LARGE."""
    sizes = [size]
    for op in operations:
        size = REGISTRY[op.kind].size(op, size)
        width, height = size
        if max(width, height) > limits.max_output_side or width * height > limits.max_output_pixels:
            raise ImageError(
                FailureCode.OUTPUT_TOO_LARGE,
                f"the {op.kind} would make a {width}×{height} image; the limit is {limits.max_output_side} px "
                f"a side and {limits.max_output_pixels / 1_000_000:g} megapixels",
            )
        sizes.append(size)
    return sizes


def _apply(
    image: Image.Image,
    operations: Sequence[Op],
    sizes: list[Size],
    *,
    output_has_alpha: bool,
    watermarks: Mapping[str, Image.Image],
) -> Image.Image:
    """The operations in order; a right-angle turn followed by a crop crops first (the box mapped
    back through the turn) and turns only what is kept: the same pixels, a fraction of the work
    (rotate 90 + a centre crop of half each side of 12 MP turned 12 MP before, 3 MP now). A
    smart crop is placed by what it sees, so it runs after the turn."""
    index = 0
    while index < len(operations):
        op = operations[index]
        following = operations[index + 1] if index + 1 < len(operations) else None
        context = StepContext(output_has_alpha=output_has_alpha, planned_input=sizes[index], watermarks=watermarks)
        if (box := _box_before_turn(op, following, image.size)) is not None:
            image = REGISTRY[op.kind].apply(image.crop(box), op, context)
            index += 2
            continue
        image = REGISTRY[op.kind].apply(image, op, context)
        index += 1
    return image


_RIGHT_ANGLES = frozenset({90.0, 180.0, 270.0})


def _box_before_turn(op: Op, following: Op | None, size: Size) -> Box | None:
    """When `op` is a right-angle turn and `following` a crop placed by size: the box of the
    unturned image (of `size`) that the crop keeps, so that cropping there and then turning gives
    the same pixels. None otherwise."""
    if not isinstance(op, Rotate) or not _crop_placed_by_size(following):
        return None
    angle = geometry.pillow_angle(op)
    if angle not in _RIGHT_ANGLES:
        return None
    assert isinstance(following, Crop)
    return geometry.box_before_turn(geometry.crop_box(following, geometry.rotated_size(op, size)), angle, size)


def _crop_placed_by_size(op: Op | None) -> bool:
    """A crop whose box follows from the image's size alone (not a smart one, which looks)."""
    return isinstance(op, Crop) and (op.left is not None or op.gravity is not Gravity.SMART)


def _leading_crop(
    operations: Sequence[Op], sizes: list[Size], header: Header
) -> tuple[Box | None, Sequence[Op], list[Size]]:
    """The box of the source that a first crop (or a first right-angle turn and the crop after
    it) keeps, cut while decoding: libvips then hands over only those pixels (a centre crop of
    half each side of a 12 MP PNG copies 3 MP into Pillow, not 12). Returns the box and the
    steps left to run, with their planned sizes. Not for an EXIF-turned source (the box would
    have to be mapped through the turn before it; rare, and correct the long way)."""
    if header.orientation != 1 or not operations:
        return None, operations, sizes
    first = operations[0]
    if _crop_placed_by_size(first):
        assert isinstance(first, Crop)
        return geometry.crop_box(first, sizes[0]), operations[1:], sizes[1:]
    if (box := _box_before_turn(first, operations[1] if len(operations) > 1 else None, sizes[0])) is not None:
        return box, [first, *operations[2:]], [(box[2] - box[0], box[3] - box[1]), *sizes[2:]]
    return None, operations, sizes


def _shrink_target(operations: Sequence[Op], sizes: list[Size]) -> Size | None:
    """How small the decoder may go: the scaled size of the first resize, when it shrinks and
    every step before it commutes with a downscale (flips, right-angle turns, grey: the same
    pixels whether they run before the resize or after it, so they run after it, on the small
    image: rotate 90 + fit 800 of 12 MP turns 0.5 MP, not 12). In the orientation of the image
    the decoder hands over, which the steps before the resize then turn."""
    turned = False
    for index, op in enumerate(operations):
        if isinstance(op, Resize):
            scaled = geometry.resize_plan(op, sizes[index]).scaled
            if scaled[0] >= sizes[index][0] and scaled[1] >= sizes[index][1]:
                return None
            return (scaled[1], scaled[0]) if turned else scaled
        if not _commutes_with_downscale(op):
            return None
        turned ^= isinstance(op, Rotate) and geometry.pillow_angle(op) in _QUARTER_TURNS
    return None


_QUARTER_TURNS = frozenset({90.0, 270.0})


def _commutes_with_downscale(op: Op) -> bool:
    if isinstance(op, Rotate):
        return geometry.pillow_angle(op) in _RIGHT_ANGLES | {0.0}
    return isinstance(op, (Flip, Grayscale))


@contextmanager
def _timed(timings: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = round((time.perf_counter() - started) * 1000, 3)
