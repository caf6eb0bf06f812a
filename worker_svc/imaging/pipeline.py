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
from worker_svc.imaging.decode import DECODE_ERRORS, Header, decode, open_header, shrink
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
    # Milliseconds spent in each kind of operation (its step in steps.REGISTRY), all variants
    # together: the worker's pixelflow_engine_operation_seconds.
    operation_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Variant:
    """One output of a task: every step from the source (the task's own operations first, then
    the variant's) and how it is written. A task without variants is one unnamed variant."""

    name: str
    operations: Sequence[Op]
    output: OutputSpec


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
    """One output (process_variants with one variant)."""
    return process_variants(
        data,
        [Variant("", operations, output)],
        auto_orient=auto_orient,
        limits=limits,
        watermarks=watermarks,
        fast_shrink_on_load=fast_shrink_on_load,
    )[0]


def process_variants(
    data: bytes,
    variants: Sequence[Variant],
    *,
    auto_orient: bool = True,
    limits: ImageLimits | None = None,
    watermarks: Mapping[str, bytes] | None = None,
    fast_shrink_on_load: bool = False,
) -> list[ProcessedImage]:
    """Every variant of one source, in order, from one decode: shrunk on load to the largest
    size any variant's first resize needs, cut to a first crop they all share, and the steps
    they all begin with run once. Pure and synchronous (CPU-bound: run it in a worker thread or
    process). `watermarks` holds the encoded image of every watermark operation's upload, by
    upload id. `fast_shrink_on_load` trades quality for speed as imgproxy does (decode.py,
    _REDUCE_GAP).

    Raises ImageError for anything the input is to blame for; anything else is a bug.
    """
    limits = limits or ImageLimits()
    timings: dict[str, float] = {}
    with _timed(timings, "decode_ms"):
        marks = _watermark_images([op for variant in variants for op in variant.operations], watermarks or {}, limits)
        header = open_header(data, limits, auto_orient=auto_orient)
        plans = [
            _Plan(variant, plan(variant.operations, header.size, limits), output_format(variant.output, header.format))
            for variant in variants
        ]
    results: dict[int, ProcessedImage] = {}
    # An animation's frames are decoded one by one while they are processed, variant by variant.
    kept_animated = [
        index
        for index, each in enumerate(plans)
        if animation.keeps_animation(header.frames, header.format, each.fmt, each.variant.output)
    ]
    still = [index for index in range(len(plans)) if index not in kept_animated]
    # Converting colours to sRGB happens while decoding: one decode per choice of profile.
    for keep_profile in sorted({plans[index].variant.output.keep_color_profile for index in still}):
        group = [index for index in still if plans[index].variant.output.keep_color_profile is keep_profile]
        stills = _process_stills(
            header, [plans[index] for index in group], limits, timings, marks, keep_profile, fast_shrink_on_load
        )
        results.update(zip(group, stills, strict=True))
    for index in kept_animated:
        each = plans[index]
        results[index] = _process_animation(
            header, each.variant.operations, each.sizes, each.fmt, each.variant.output, limits, timings, marks
        )
    # _apply times each step into `timings` too, under _OPERATION_PREFIX: kept apart here.
    stages = {name: spent for name, spent in timings.items() if not name.startswith(_OPERATION_PREFIX)}
    operations = {
        name.removeprefix(_OPERATION_PREFIX): spent
        for name, spent in timings.items()
        if name.startswith(_OPERATION_PREFIX)
    }
    return [
        dataclasses.replace(results[index], timings=dict(stages), operation_ms=dict(operations))
        for index in range(len(plans))
    ]


@dataclass(frozen=True)
class _Plan:
    variant: Variant
    sizes: list[Size]  # before each step and, last, the result's
    fmt: OutputFormat

    @property
    def has_alpha(self) -> bool:
        # `best` keeps transparency: every candidate for an image with alpha can hold it.
        return self.fmt in HAS_ALPHA or self.fmt is OutputFormat.BEST


def _process_stills(  # noqa: PLR0917 - process_variants()' state, passed on once
    header: Header,
    plans: Sequence[_Plan],
    limits: ImageLimits,
    timings: dict[str, float],
    marks: Mapping[str, Image.Image],
    keep_profile: bool,
    fast_shrink: bool,
) -> list[ProcessedImage]:
    with _timed(timings, "decode_ms", add=True):
        region, steps = _shared_leading_crop(plans, header)
        image = decode(
            header,
            shrink_to=_shared_shrink_target(steps),
            region=region,
            keep_profile=keep_profile,
            fast_shrink=fast_shrink,
        )
        metadata = [Metadata.kept(image, each.variant.output) for each in plans]
        image = modes.normalise(image)
    with _timed(timings, "process_ms", add=True):
        shared = _shared_prefix(steps, plans)
        operations, sizes = steps[0]
        base = _apply(
            image,
            operations[:shared],
            sizes[: shared + 1],
            output_has_alpha=plans[0].has_alpha,
            watermarks=marks,
            timings=timings,
        )
        finals = [
            _apply(
                _shrunk_for(base, operations[shared:], sizes[shared:]),
                operations[shared:],
                sizes[shared:],
                output_has_alpha=each.has_alpha,
                watermarks=marks,
                timings=timings,
            )
            for (operations, sizes), each in zip(steps, plans, strict=True)
        ]
    processed = []
    with _timed(timings, "encode_ms", add=True):
        for final, each, kept in zip(finals, plans, metadata, strict=True):
            fmt = each.fmt
            if fmt is OutputFormat.BEST:
                encoded, fmt = encode_best(final, each.variant.output, kept, max_bytes=limits.max_result_bytes)
            else:
                encoded = encode(final, fmt, each.variant.output, kept, max_bytes=limits.max_result_bytes)
            processed.append(ProcessedImage(encoded, final.width, final.height, fmt, CONTENT_TYPES[fmt]))
    return processed


Steps = tuple[Sequence[Op], list[Size]]


def _shared_leading_crop(plans: Sequence[_Plan], header: Header) -> tuple[Box | None, list[Steps]]:
    """The box every variant's first crop keeps (cut while decoding), with each variant's steps
    left to run; no box, and every step, unless all of them begin with the same cut."""
    cut = [_leading_crop(each.variant.operations, each.sizes, header) for each in plans]
    boxes = {region for region, _, _ in cut}
    if len(boxes) == 1 and None not in boxes:
        return cut[0][0], [(operations, sizes) for _, operations, sizes in cut]
    return None, [(each.variant.operations, each.sizes) for each in plans]


def _shared_shrink_target(steps: Sequence[Steps]) -> Size | None:
    """How small the decoder may go for all of them: the largest of their first resizes' sizes,
    side by side (each variant's own resize then scales from there). None if any needs more."""
    targets = [_shrink_target(operations, sizes) for operations, sizes in steps]
    sized = [target for target in targets if target is not None]
    if len(sized) < len(targets):
        return None
    return (max(width for width, _ in sized), max(height for _, height in sized))


def _shared_prefix(steps: Sequence[Steps], plans: Sequence[_Plan]) -> int:
    """How many first steps every variant runs alike (the same step on the same planned size,
    and, for a step that fills with transparency or a colour, the same kind of output)."""
    shortest = min(len(operations) for operations, _ in steps)
    for index in range(shortest):
        keys = {
            (operations[index], sizes[index], each.has_alpha if _fills_by_output(operations[index]) else None)
            for (operations, sizes), each in zip(steps, plans, strict=True)
        }
        if len(keys) > 1:
            return index
    return shortest


def _shrunk_for(image: Image.Image, operations: Sequence[Op], sizes: list[Size]) -> Image.Image:
    """The shared image scaled down as the decoder would have for this variant alone (its first
    resize's size, when the steps before it commute with a downscale): libvips, not Pillow,
    does it; the variant's resize then has nothing left to do."""
    target = _shrink_target(operations, sizes)
    if target is None or (target[0] >= image.width and target[1] >= image.height):
        return image
    return shrink(image, target)


def _fills_by_output(op: Op) -> bool:
    """Steps whose new pixels default to transparent or opaque by the output (steps.py)."""
    return isinstance(op, (Resize, Rotate)) and not op.background


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
    with _timed(timings, "process_ms", add=True):
        try:
            for frame, duration in animation.frames(header.image):
                pictures.append(_apply(frame, steady, sizes, output_has_alpha=True, watermarks=marks, timings=timings))
                durations.append(duration)
        except MemoryError as error:
            raise ImageError(FailureCode.IMAGE_TOO_LARGE, "the animation is too large to decode in memory") from error
        except DECODE_ERRORS as error:
            raise ImageError(FailureCode.CORRUPT_IMAGE, f"a frame of the {header.format.value} is damaged") from error
    loop = header.image.info.get("loop", 0)
    frames = Frames(pictures[1:], durations, loop if isinstance(loop, int) else 0)
    with _timed(timings, "encode_ms", add=True):
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
    timings: dict[str, float],
) -> Image.Image:
    """The operations in order; a right-angle turn followed by a crop crops first (the box mapped
    back through the turn) and turns only what is kept: the same pixels, a fraction of the work
    (rotate 90 + a centre crop of half each side of 12 MP turned 12 MP before, 3 MP now). A
    smart crop is placed by what it sees, so it runs after the turn. Each step's time is added to
    `timings` under _OPERATION_PREFIX + its kind (a turn and its crop count as the turn)."""
    index = 0
    while index < len(operations):
        op = operations[index]
        following = operations[index + 1] if index + 1 < len(operations) else None
        context = StepContext(output_has_alpha=output_has_alpha, planned_input=sizes[index], watermarks=watermarks)
        with _timed(timings, _OPERATION_PREFIX + op.kind, add=True):
            if (box := _box_before_turn(op, following, image.size)) is not None:
                image = REGISTRY[op.kind].apply(image.crop(box), op, context)
                index += 2
                continue
            image = REGISTRY[op.kind].apply(image, op, context)
        index += 1
    return image


_OPERATION_PREFIX = "operation:"


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
def _timed(timings: dict[str, float], name: str, *, add: bool = False) -> Iterator[None]:
    """Times the block into `timings[name]`; `add` adds to what is there (variant groups)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        spent = (time.perf_counter() - started) * 1000
        timings[name] = round(spent + (timings.get(name, 0.0) if add else 0.0), 3)
