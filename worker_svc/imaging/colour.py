"""Colour: every result is sRGB, unless the user keeps the source's own profile.

Browsers and viewers take an image without a profile to be sRGB, and PixelFlow strips metadata
by default: a Display P3 or Adobe RGB photograph written without its profile comes out washed
out, and a CMYK one turned into RGB by formula (what Pillow's `convert` does) comes out with the
wrong colours. So a source whose pixels are not sRGB is converted, once, while it is decoded:
with its embedded ICC profile, or for CMYK without one with the CMYK profile libvips ships
(littlecms does the work in both cases). The result then needs no profile.

`keep_color_profile` leaves RGB pixels as they are and embeds the source's profile instead
(what a print workflow wants); CMYK is converted either way, since every operation works on RGB.
"""

from __future__ import annotations

import io

from PIL import Image, ImageCms

# Modes whose profile describes RGB (or palette) colours; a grey source keeps its greys.
_COLOUR_MODES = frozenset({"RGB", "RGBA", "RGBX", "P", "PA"})


def needs_srgb(image: Image.Image, *, keep_profile: bool) -> bool:
    """Whether the decoded pixels must be converted to sRGB."""
    if image.mode == "CMYK":
        return True
    if keep_profile or image.mode not in _COLOUR_MODES:
        return False
    profile = source_profile(image)
    return profile is not None and not is_srgb(profile)


def source_profile(image: Image.Image) -> bytes | None:
    icc = image.info.get("icc_profile")
    return icc if isinstance(icc, bytes) and icc else None


def is_srgb(profile: bytes) -> bool:
    """An sRGB profile by its description, as every common one says ("sRGB IEC61966-2.1",
    "sRGB built-in", …). A profile littlecms cannot read counts as sRGB: it is ignored, as a
    viewer would, rather than failing the task."""
    try:
        description = ImageCms.getProfileDescription(ImageCms.ImageCmsProfile(io.BytesIO(profile)))
    except (ImageCms.PyCMSError, OSError, TypeError, ValueError):
        return True
    return "srgb" in description.lower()
