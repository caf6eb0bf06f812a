"""Which image formats PixelFlow accepts, recognised by their magic numbers (no image library),
so the API refuses a non-image upload before anything is stored and the worker pins its decoder
to the one format the bytes claim to be."""

from __future__ import annotations

from enum import StrEnum


class SourceFormat(StrEnum):
    """Accepted inputs; the values are Pillow's format names. Everything else — SVG, PSD, EPS,
    PDF, ICO, HEIC and the rest — is refused before any decoder sees it."""

    JPEG = "JPEG"
    PNG = "PNG"
    WEBP = "WEBP"
    GIF = "GIF"
    TIFF = "TIFF"
    BMP = "BMP"
    AVIF = "AVIF"


CONTENT_TYPES = {
    SourceFormat.JPEG: "image/jpeg",
    SourceFormat.PNG: "image/png",
    SourceFormat.WEBP: "image/webp",
    SourceFormat.GIF: "image/gif",
    SourceFormat.TIFF: "image/tiff",
    SourceFormat.BMP: "image/bmp",
    SourceFormat.AVIF: "image/avif",
}

_PREFIXES: tuple[tuple[bytes, SourceFormat], ...] = (
    (b"\xff\xd8\xff", SourceFormat.JPEG),
    (b"\x89PNG\r\n\x1a\n", SourceFormat.PNG),
    (b"GIF87a", SourceFormat.GIF),
    (b"GIF89a", SourceFormat.GIF),
    (b"II*\x00", SourceFormat.TIFF),
    (b"MM\x00*", SourceFormat.TIFF),
    (b"BM", SourceFormat.BMP),
)
# ISO-BMFF brands that mean AV1 still images or sequences. HEIC (HEVC) shares the container but
# not the codec, and is refused.
_AVIF_BRANDS = frozenset({b"avif", b"avis"})


def detect_format(data: bytes) -> SourceFormat | None:
    """The allowlisted format `data` starts like, or None."""
    for prefix, fmt in _PREFIXES:
        if data.startswith(prefix):
            return fmt
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return SourceFormat.WEBP
    if _is_avif(data):
        return SourceFormat.AVIF
    return None


def _is_avif(data: bytes) -> bool:
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(data[:4], "big")
    if not 16 <= box_size <= min(len(data), 4096):
        return False
    brands = {data[8:12]} | {data[offset : offset + 4] for offset in range(16, box_size - 3, 4)}
    return bool(brands & _AVIF_BRANDS)
