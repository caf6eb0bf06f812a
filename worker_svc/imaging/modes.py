"""Pixel modes: every decoded image is brought to L, LA, RGB or RGBA, and helpers around alpha."""

from __future__ import annotations

from PIL import Image

from tasks.operations import RGBA

WORKING_MODES = frozenset({"L", "LA", "RGB", "RGBA"})
WHITE: RGBA = (255, 255, 255, 255)
BLACK: RGBA = (0, 0, 0, 255)
TRANSPARENT: RGBA = (0, 0, 0, 0)


def normalise(image: Image.Image) -> Image.Image:
    """One of the working modes, keeping transparency where the source had it."""
    if image.mode in WORKING_MODES:
        return image
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # 16-bit and float greys: scale to 8 bits rather than clip.
        return image.convert("I").point(lambda value: value / 256).convert("L")
    if image.mode in _DIRECT:
        return image.convert(_DIRECT[image.mode])
    if image.mode in ("P", "PA"):
        return image.convert("RGBA" if image.has_transparency_data else "RGB")
    return image.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX


_DIRECT = {"1": "L", "La": "LA", "RGBa": "RGBA"}


def has_alpha(image: Image.Image) -> bool:
    return image.mode in ("LA", "RGBA")


def with_alpha(image: Image.Image) -> Image.Image:
    return image.convert({"L": "LA", "RGB": "RGBA"}.get(image.mode, image.mode))


def without_alpha(image: Image.Image, background: RGBA = WHITE) -> Image.Image:
    """Flattened onto an opaque background (white unless told), as L or RGB."""
    if not has_alpha(image):
        return image
    opaque = "L" if image.mode == "LA" and _is_grey(background) else "RGB"
    canvas = Image.new("RGBA", image.size, (*background[:3], 255))
    canvas.alpha_composite(image.convert("RGBA"))
    return canvas.convert(opaque)


def ready_for(image: Image.Image, colour: RGBA) -> Image.Image:
    """The image in a mode that can hold `colour` (colour for a grey image, alpha if translucent)."""
    if not _is_grey(colour) and image.mode in ("L", "LA"):
        image = image.convert("RGBA" if image.mode == "LA" else "RGB")
    if colour[3] < 255:
        image = with_alpha(image)
    return image


def fill_value(image: Image.Image, colour: RGBA) -> int | tuple[int, ...]:
    """`colour` expressed in the image's mode."""
    red, green, blue, alpha = colour
    if image.mode == "L":
        return red
    if image.mode == "LA":
        return (red, alpha)
    if image.mode == "RGB":
        return (red, green, blue)
    return colour


def _is_grey(colour: RGBA) -> bool:
    return colour[0] == colour[1] == colour[2]
