"""Sizes and boxes each operation produces, computed without pixels.

The pipeline plans the whole chain from the header's size before decoding, so limits and
impossible crops fail fast; the steps use the same functions, so plan and result agree.

Resize rules (the names follow sharp/libvips):
- width or height 0: the other is derived from the aspect ratio and the fit does not matter.
- CONTAIN scales to fit inside the box and pads to exactly the box; COVER scales to cover the
  box and crops it centred; FILL stretches; INSIDE/OUTSIDE scale only (no pad, no crop).
- Without allow_upscale the scale factor is capped at 1 (per axis for FILL); CONTAIN still pads
  to the box and COVER crops to at most the box.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tasks.failures import FailureCode
from tasks.operations import Crop, Gravity, Resize, ResizeFit, Rotate
from worker_svc.imaging.errors import ImageError

Size = tuple[int, int]
Box = tuple[int, int, int, int]  # left, top, right, bottom


@dataclass(frozen=True)
class ResizePlan:
    scaled: Size  # the image is resampled to this
    final: Size  # then padded (CONTAIN) or centre-cropped (COVER) to this


def resize_plan(op: Resize, size: Size) -> ResizePlan:
    width, height = size
    if op.width == 0 or op.height == 0:
        scale = op.width / width if op.height == 0 else op.height / height
        scaled = _scaled(size, _cap(scale, op), _cap(scale, op))
        return ResizePlan(scaled, scaled)
    scale_x, scale_y = op.width / width, op.height / height
    if op.fit is ResizeFit.FILL:
        scaled = _scaled(size, _cap(scale_x, op), _cap(scale_y, op))
        return ResizePlan(scaled, scaled)
    cover = op.fit in (ResizeFit.COVER, ResizeFit.OUTSIDE)
    scale = _cap(max(scale_x, scale_y) if cover else min(scale_x, scale_y), op)
    scaled = _scaled(size, scale, scale)
    if op.fit is ResizeFit.CONTAIN:
        return ResizePlan(scaled, (op.width, op.height))
    if op.fit is ResizeFit.COVER:
        return ResizePlan(scaled, (min(op.width, scaled[0]), min(op.height, scaled[1])))
    return ResizePlan(scaled, scaled)


def _cap(scale: float, op: Resize) -> float:
    return scale if op.allow_upscale else min(scale, 1.0)


def _scaled(size: Size, scale_x: float, scale_y: float) -> Size:
    return max(1, round(size[0] * scale_x)), max(1, round(size[1] * scale_y))


def centred_offset(outer: Size, inner: Size) -> tuple[int, int]:
    return (outer[0] - inner[0]) // 2, (outer[1] - inner[1]) // 2


def crop_box(op: Crop, size: Size) -> Box:
    """The box to cut; a box outside the image is an error, a gravity crop is clamped to it."""
    width, height = size
    if op.left is not None and op.top is not None:
        if op.left + op.width > width or op.top + op.height > height:
            raise ImageError(
                FailureCode.INVALID_OPERATION,
                f"crop box {op.width}×{op.height} at ({op.left}, {op.top}) lies outside the {width}×{height} image",
            )
        return op.left, op.top, op.left + op.width, op.top + op.height
    crop_w, crop_h = min(op.width, width), min(op.height, height)
    horizontal, vertical = _GRAVITY_ANCHORS[op.gravity]
    left = (width - crop_w) * horizontal // 2
    top = (height - crop_h) * vertical // 2
    return left, top, left + crop_w, top + crop_h


# (x, y) anchors in halves: 0 = start, 1 = centre, 2 = end.
_GRAVITY_ANCHORS: dict[Gravity, tuple[int, int]] = {
    Gravity.CENTER: (1, 1),
    Gravity.NORTH: (1, 0),
    Gravity.NORTH_EAST: (2, 0),
    Gravity.EAST: (2, 1),
    Gravity.SOUTH_EAST: (2, 2),
    Gravity.SOUTH: (1, 2),
    Gravity.SOUTH_WEST: (0, 2),
    Gravity.WEST: (0, 1),
    Gravity.NORTH_WEST: (0, 0),
    Gravity.SMART: (1, 1),  # sized (and planned) like a centred crop; placed by its step
}


def placed(outer: Size, inner: Size, gravity: Gravity, margin: int) -> tuple[int, int]:
    """Where `inner` goes in `outer`: against the edges `gravity` names, `margin` px from them."""
    horizontal, vertical = _GRAVITY_ANCHORS[gravity]
    left = margin + (outer[0] - 2 * margin - inner[0]) * horizontal // 2
    top = margin + (outer[1] - 2 * margin - inner[1]) * vertical // 2
    return left, top


def pillow_angle(op: Rotate) -> float:
    """Pillow turns counter-clockwise; the API turns clockwise."""
    return (-op.angle) % 360.0


def rotated_size(op: Rotate, size: Size) -> Size:
    """The canvas Pillow's rotate(expand=True) makes (its own arithmetic, so they agree)."""
    angle = pillow_angle(op)
    width, height = size
    if angle in (0.0, 180.0):
        return size
    if angle in (90.0, 270.0):
        return height, width
    radians = -math.radians(angle)
    cos, sin = round(math.cos(radians), 15), round(math.sin(radians), 15)
    centre_x, centre_y = width / 2, height / 2
    offset_x = cos * -centre_x + sin * -centre_y + centre_x
    offset_y = -sin * -centre_x + cos * -centre_y + centre_y
    xs = [cos * x + sin * y + offset_x for x, y in ((0, 0), (width, 0), (width, height), (0, height))]
    ys = [-sin * x + cos * y + offset_y for x, y in ((0, 0), (width, 0), (width, height), (0, height))]
    return math.ceil(max(xs)) - math.floor(min(xs)), math.ceil(max(ys)) - math.floor(min(ys))


def box_before_turn(box: Box, angle: float, size: Size) -> Box:
    """The box of an image of `size` that a right-angle turn by Pillow's counter-clockwise
    `angle` (90, 180 or 270, with expand) moves onto `box` of the turned image: cropping there
    first and turning after gives the same pixels, and turns only what is kept."""
    width, height = size
    left, top, right, bottom = box
    if angle == 90.0:  # (x, y) → (y, width - 1 - x)
        return width - bottom, left, width - top, right
    if angle == 180.0:  # (x, y) → (width - 1 - x, height - 1 - y)
        return width - right, height - bottom, width - left, height - top
    if angle == 270.0:  # (x, y) → (height - 1 - y, x)
        return top, height - right, bottom, height - left
    raise ValueError(f"not a right-angle turn: {angle}")


def box_around(focus: tuple[int, int], crop: Size, size: Size) -> Box:
    """A `crop`-sized box centred on `focus` as far as the image allows."""
    width, height = size
    crop_w, crop_h = min(crop[0], width), min(crop[1], height)
    left = min(max(focus[0] - crop_w // 2, 0), width - crop_w)
    top = min(max(focus[1] - crop_h // 2, 0), height - crop_h)
    return left, top, left + crop_w, top + crop_h
