"""The operations, one small function each, and the registry that names them.

Every step takes the image (in a working mode: L, LA, RGB or RGBA), its operation and the
context, and returns a new image; `size` says what it will produce without touching pixels.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from PIL import Image, ImageChops, ImageEnhance, ImageFilter, ImageOps

from tasks.operations import (
    Adjust,
    Blur,
    Crop,
    Flip,
    FlipDirection,
    Gravity,
    Grayscale,
    Op,
    Resize,
    Rotate,
    Sharpen,
    Watermark,
)
from worker_svc.imaging import attention, geometry, modes
from worker_svc.imaging.geometry import Size

_Op = TypeVar("_Op", bound=Op)


@dataclass(frozen=True)
class StepContext:
    # Where the result can keep transparency: empty backgrounds are transparent there.
    output_has_alpha: bool
    # The size the plan assumed for this step's input: for a resize whose input was shrunk on
    # load, the size before the shrink, so that the result is the planned one to the pixel.
    planned_input: Size
    # Watermark images by upload id, decoded (RGBA) once per task.
    watermarks: Mapping[str, Image.Image] = field(default_factory=dict)


@dataclass(frozen=True)
class Step(Generic[_Op]):
    apply: Callable[[Image.Image, _Op, StepContext], Image.Image]
    size: Callable[[_Op, Size], Size]


def _same_size(_op: Op, size: Size) -> Size:
    return size


def resize(image: Image.Image, op: Resize, ctx: StepContext) -> Image.Image:
    plan = geometry.resize_plan(op, ctx.planned_input)
    if image.size != plan.scaled:
        image = image.resize(plan.scaled, Image.Resampling.LANCZOS, reducing_gap=3.0)
    if plan.final == plan.scaled:
        return image
    if plan.final[0] <= plan.scaled[0] and plan.final[1] <= plan.scaled[1]:  # COVER: crop the overflow
        return crop(image, Crop(plan.final[0], plan.final[1], gravity=op.gravity), ctx)
    colour = op.background or (modes.TRANSPARENT if ctx.output_has_alpha else modes.WHITE)  # CONTAIN: pad
    image = modes.ready_for(image, colour)
    canvas = Image.new(image.mode, plan.final, modes.fill_value(image, colour))
    canvas.paste(image, geometry.centred_offset(plan.final, plan.scaled))
    return canvas


def crop(image: Image.Image, op: Crop, _ctx: StepContext) -> Image.Image:
    if op.gravity is Gravity.SMART and op.left is None:
        size = (op.width, op.height)
        return image.crop(geometry.box_around(attention.focus(image, size), size, image.size))
    return image.crop(geometry.crop_box(op, image.size))


def _crop_size(op: Crop, size: Size) -> Size:
    left, top, right, bottom = geometry.crop_box(op, size)
    return right - left, bottom - top


def rotate(image: Image.Image, op: Rotate, ctx: StepContext) -> Image.Image:
    angle = geometry.pillow_angle(op)
    if angle % 90 == 0:
        return image.rotate(angle, expand=True)  # exact transposes, no background shows
    colour = op.background or (modes.TRANSPARENT if ctx.output_has_alpha else modes.BLACK)
    image = modes.ready_for(image, colour)
    return image.rotate(
        angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=modes.fill_value(image, colour)
    )


def flip(image: Image.Image, op: Flip, _ctx: StepContext) -> Image.Image:
    return ImageOps.mirror(image) if op.direction is FlipDirection.HORIZONTAL else ImageOps.flip(image)


def grayscale(image: Image.Image, _op: Grayscale, _ctx: StepContext) -> Image.Image:
    return image.convert("LA" if modes.has_alpha(image) else "L")


def blur(image: Image.Image, op: Blur, _ctx: StepContext) -> Image.Image:
    # Premultiplied, so transparent pixels do not bleed their (invisible) colour into the edges.
    premultiplied = {"RGBA": "RGBa", "LA": "La"}.get(image.mode)
    if premultiplied is None:
        return image.filter(ImageFilter.GaussianBlur(op.sigma))
    return image.convert(premultiplied).filter(ImageFilter.GaussianBlur(op.sigma)).convert(image.mode)


def sharpen(image: Image.Image, op: Sharpen, _ctx: StepContext) -> Image.Image:
    mask = ImageFilter.UnsharpMask(radius=op.sigma, percent=round(op.amount), threshold=0)
    return _on_colour(image, lambda colour: colour.filter(mask))


def adjust(image: Image.Image, op: Adjust, _ctx: StepContext) -> Image.Image:
    def enhance(colour: Image.Image) -> Image.Image:
        for enhancer, factor in (
            (ImageEnhance.Brightness, op.brightness),
            (ImageEnhance.Contrast, op.contrast),
            (ImageEnhance.Color, op.saturation),
        ):
            if factor != 1.0:
                colour = enhancer(colour).enhance(factor)
        return colour

    return _on_colour(image, enhance)


def watermark(image: Image.Image, op: Watermark, ctx: StepContext) -> Image.Image:
    """The watermark at its place, scaled to `scale` of the width (never past the margins), its
    alpha multiplied by `opacity`; the image keeps its mode (grey turns RGB for a coloured mark)."""
    mark = ctx.watermarks[op.upload_id]
    room = (image.width - 2 * op.margin, image.height - 2 * op.margin)
    if room[0] < 1 or room[1] < 1:
        return image  # the margins leave no room: nothing to lay over
    width = round(image.width * op.scale) if op.scale is not None else mark.width
    factor = min(width / mark.width, room[0] / mark.width, room[1] / mark.height)
    size = (max(1, round(mark.width * factor)), max(1, round(mark.height * factor)))
    if size != mark.size:
        mark = mark.resize(size, Image.Resampling.LANCZOS)
    if op.opacity < 1:
        mark = mark.copy()
        mark.putalpha(mark.getchannel("A").point(lambda alpha: round(alpha * op.opacity)))
    coloured = image.mode in ("L", "LA") and not _is_grey(mark)
    base = image.convert("RGBA" if image.mode == "LA" else "RGB") if coloured else image
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    layer.paste(mark, geometry.placed(base.size, size, op.position, op.margin))
    composed = Image.alpha_composite(base.convert("RGBA"), layer)
    return composed.convert(base.mode)


def _is_grey(image: Image.Image) -> bool:
    red, green, blue = image.convert("RGB").split()
    return ImageChops.difference(red, green).getbbox() is None and ImageChops.difference(green, blue).getbbox() is None


def _on_colour(image: Image.Image, change: Callable[[Image.Image], Image.Image]) -> Image.Image:
    """`change` applied to the colour channels only; alpha is kept as it was."""
    if not modes.has_alpha(image):
        return change(image)
    changed = change(image.convert(image.mode[:-1]))
    changed.putalpha(image.getchannel("A"))
    return changed


# The registry: one entry per `Operation.kind` in the proto, in the proto's order.
REGISTRY: Mapping[str, Step[Any]] = {
    "resize": Step(resize, lambda op, size: geometry.resize_plan(op, size).final),
    "crop": Step(crop, _crop_size),
    "rotate": Step(rotate, geometry.rotated_size),
    "flip": Step(flip, _same_size),
    "grayscale": Step(grayscale, _same_size),
    "blur": Step(blur, _same_size),
    "sharpen": Step(sharpen, _same_size),
    "adjust": Step(adjust, _same_size),
    "watermark": Step(watermark, _same_size),
}
