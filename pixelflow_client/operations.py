"""Pipeline steps written as short specs, for the command line and for scripts:

    resize=800            resize=800x600,fit=cover,gravity=smart      resize=x600,upscale
    crop=300x200          crop=300x200+10+20                          crop=300x200,gravity=north
    rotate=90             rotate=12.5,background=#ffffff
    flip=horizontal       flip=vertical      grayscale      blur=2.5      sharpen      sharpen=1.5,amount=150
    adjust,brightness=1.2,contrast=0.9,saturation=0
    watermark=UPLOAD_ID,position=south_east,margin=16,opacity=0.6,scale=0.2

`NAME[=VALUE][,KEY=VALUE|FLAG]...`; enum values are the proto's names without their prefix, in
any case. Only the syntax is checked here: the rules on values are the contract's (the server
checks them, and the CLI checks a whole request against them before it uploads anything).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from pixelflow.v1 import task_pb2

_SIZE = re.compile(r"^(?P<width>\d*)(?:x(?P<height>\d*))?$")
_BOX = re.compile(r"^(?P<width>\d+)x(?P<height>\d+)(?:\+(?P<left>\d+)\+(?P<top>\d+))?$")
_FLIPS = {"h": "horizontal", "v": "vertical"}


class SpecError(ValueError):
    """A spec that is not written as the syntax above; the message says what was expected."""


def parse(spec: str) -> task_pb2.Operation:
    name, _, rest = spec.strip().partition(",")
    name, _, value = name.partition("=")
    options: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, _, option = item.partition("=")
        options[key.strip().lower()] = option.strip()
    build = _BUILDERS.get(name.strip().lower())
    if build is None:
        raise SpecError(f"unknown operation {name!r}: use one of {', '.join(sorted(_BUILDERS))}")
    operation = build(value.strip(), options)
    if options:
        raise SpecError(f"{name}: unknown option(s) {', '.join(sorted(options))}")
    return operation


def parse_variant(spec: str) -> task_pb2.Variant:
    """`thumb=200,format=webp` · `large=1600x1200,fit=cover,format=jpeg,quality=85` · `page=800,format=avif,lossless`:
    a named output resized to SIZE (as `resize=`, with its options), written as asked."""
    name, _, rest = spec.strip().partition("=")
    if not name or not rest:
        raise SpecError(
            f"variant {spec!r}: write NAME=SIZE[,format=F][,quality=Q][,lossless] (e.g. thumb=200,format=webp)"
        )
    size, _, options_text = rest.partition(",")
    options = dict(item.partition("=")[::2] for item in filter(None, options_text.split(",")))
    output = task_pb2.OutputOptions()
    if "format" in options:
        output.format = enum_value("ImageFormat", options.pop("format"))  # type: ignore[assignment]
    if "quality" in options:
        output.quality = int(_number("quality", options.pop("quality")))
    output.lossless = _flag(options, "lossless")
    resize = ",".join([f"resize={size}", *(f"{key}={value}" if value else key for key, value in options.items())])
    return task_pb2.Variant(name=name.strip(), operations=[parse(resize)], output=output)


def enum_value(enum: str, text: str) -> int:
    """`enum_value("ResizeFit", "cover")` → RESIZE_FIT_COVER's number (a value's name is the
    enum's prefix and the word); an unknown word is an error listing the known."""
    values = task_pb2.DESCRIPTOR.enum_types_by_name[enum].values
    prefix = values[0].name.removesuffix("UNSPECIFIED")
    wanted = f"{prefix}{text.strip().upper().replace('-', '_')}"
    for value in values[1:]:
        if value.name == wanted:
            return int(value.number)
    known = ", ".join(value.name.removeprefix(prefix).lower() for value in values[1:])
    raise SpecError(f"{text!r} is not one of {known}")


def _resize(value: str, options: dict[str, str]) -> task_pb2.Operation:
    size = _SIZE.match(value)
    if not value or size is None:
        raise SpecError(f"resize={value}: give WIDTH, WIDTHxHEIGHT or xHEIGHT in pixels")
    resize = task_pb2.Resize(width=int(size["width"] or 0), height=int(size["height"] or 0))
    if "fit" in options:
        resize.fit = enum_value("ResizeFit", options.pop("fit"))  # type: ignore[assignment]
    if "gravity" in options:
        resize.gravity = enum_value("Gravity", options.pop("gravity"))  # type: ignore[assignment]
    if "background" in options:
        resize.background = options.pop("background")
    resize.allow_upscale = _flag(options, "upscale")
    return task_pb2.Operation(resize=resize)


def _crop(value: str, options: dict[str, str]) -> task_pb2.Operation:
    box = _BOX.match(value)
    if box is None:
        raise SpecError(f"crop={value}: give WIDTHxHEIGHT, or WIDTHxHEIGHT+LEFT+TOP for a box")
    crop = task_pb2.Crop(width=int(box["width"]), height=int(box["height"]))
    if box["left"] is not None:
        crop.left, crop.top = int(box["left"]), int(box["top"])
    if "gravity" in options:
        crop.gravity = enum_value("Gravity", options.pop("gravity"))  # type: ignore[assignment]
    return task_pb2.Operation(crop=crop)


def _rotate(value: str, options: dict[str, str]) -> task_pb2.Operation:
    return task_pb2.Operation(
        rotate=task_pb2.Rotate(angle=_number("rotate", value), background=options.pop("background", ""))
    )


def _flip(value: str, options: dict[str, str]) -> task_pb2.Operation:
    direction = enum_value("FlipDirection", _FLIPS.get(value.lower(), value))
    return task_pb2.Operation(flip=task_pb2.Flip(direction=direction))  # type: ignore[arg-type]


def _grayscale(value: str, options: dict[str, str]) -> task_pb2.Operation:
    return task_pb2.Operation(grayscale=task_pb2.Grayscale())


def _blur(value: str, options: dict[str, str]) -> task_pb2.Operation:
    return task_pb2.Operation(blur=task_pb2.Blur(sigma=_number("blur", value)))


def _sharpen(value: str, options: dict[str, str]) -> task_pb2.Operation:
    sharpen = task_pb2.Sharpen(sigma=_number("sharpen", value) if value else 0)
    if "amount" in options:
        sharpen.amount = _number("amount", options.pop("amount"))
    return task_pb2.Operation(sharpen=sharpen)


def _adjust(value: str, options: dict[str, str]) -> task_pb2.Operation:
    adjust = task_pb2.Adjust()
    for key in ("brightness", "contrast", "saturation"):
        if key in options:
            setattr(adjust, key, _number(key, options.pop(key)))
    return task_pb2.Operation(adjust=adjust)


def _watermark(value: str, options: dict[str, str]) -> task_pb2.Operation:
    mark = task_pb2.Watermark(upload_id=value)
    if "position" in options:
        mark.position = enum_value("Gravity", options.pop("position"))  # type: ignore[assignment]
    if "margin" in options:
        mark.margin = int(_number("margin", options.pop("margin")))
    for key in ("opacity", "scale"):
        if key in options:
            setattr(mark, key, _number(key, options.pop(key)))
    return task_pb2.Operation(watermark=mark)


def _number(name: str, text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SpecError(f"{name}={text}: expected a number") from None


def _flag(options: dict[str, str], name: str) -> bool:
    if name not in options:
        return False
    if options.pop(name) not in ("", "true", "yes", "1"):
        raise SpecError(f"{name} is a flag: write it alone")
    return True


_BUILDERS: dict[str, Callable[[str, dict[str, str]], task_pb2.Operation]] = {
    "resize": _resize,
    "crop": _crop,
    "rotate": _rotate,
    "flip": _flip,
    "grayscale": _grayscale,
    "blur": _blur,
    "sharpen": _sharpen,
    "adjust": _adjust,
    "watermark": _watermark,
}
