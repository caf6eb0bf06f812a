"""No output format carries the source's metadata (EXIF with GPS and camera, XMP, IPTC, TIFF's
own tags) unless keep_metadata is set — including when no operation touches the image, so the
decoded source object reaches the encoder unchanged. Checked on the encoded bytes themselves:
each piece of metadata carries a unique marker that must not appear in the output."""

from __future__ import annotations

import io

import pytest
from PIL import Image, TiffImagePlugin

from tasks.operations import Grayscale, Op, OutputFormat, OutputSpec
from worker_svc.imaging import ImageLimits, process

pytestmark = pytest.mark.unit

MARKERS = {
    "artist": b"MarkerArtist-7c1f",
    "make": b"MarkerMake-42aa",
    "model": b"MarkerModel-9e03",
    "gps": b"MarkerGPS-51d2",
    "xmp": b"MarkerXMP-d6b8",
    "iptc": b"MarkerIPTC-0f4e",
}
_ARTIST, _MAKE, _MODEL, _GPS_IFD, _GPS_AREA = 315, 271, 272, 0x8825, 0x001C
_XMP_TAG, _IPTC_TAG = 700, 33723


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[_ARTIST] = MARKERS["artist"].decode()
    exif[_MAKE] = MARKERS["make"].decode()
    exif[_MODEL] = MARKERS["model"].decode()
    exif.get_ifd(_GPS_IFD)[_GPS_AREA] = MARKERS["gps"]
    return exif


def _xmp() -> bytes:
    return b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF>' + MARKERS["xmp"] + b"</rdf:RDF></x:xmpmeta>"


def _jpeg_source() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (200, 120, 40)).save(buffer, "JPEG", exif=_exif(), xmp=_xmp())
    return buffer.getvalue()


def _tiff_source() -> bytes:
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[_ARTIST] = MARKERS["artist"].decode()
    tags[_MAKE] = MARKERS["make"].decode()
    tags[_MODEL] = MARKERS["model"].decode()
    tags[_XMP_TAG] = _xmp()
    tags[_IPTC_TAG] = b"\x1c\x02\x78\x00\x10" + MARKERS["iptc"]
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (40, 120, 200)).save(buffer, "TIFF", tiffinfo=tags, exif=_exif())
    return buffer.getvalue()


SOURCES = {"jpeg": _jpeg_source, "tiff": _tiff_source}


@pytest.mark.parametrize("source", list(SOURCES))
def test_the_sources_do_carry_every_marker(source: str) -> None:
    data = SOURCES[source]()
    # Pillow writes no GPS IFD into a TIFF, and IPTC only into a TIFF.
    expected = {"jpeg": set(MARKERS) - {"iptc"}, "tiff": set(MARKERS) - {"gps"}}[source]
    assert {name for name, marker in MARKERS.items() if marker in data} == expected


@pytest.mark.parametrize("operations", [[], [Grayscale()]], ids=["untouched", "processed"])
@pytest.mark.parametrize("fmt", list(OutputFormat))
@pytest.mark.parametrize("source", list(SOURCES))
def test_no_output_format_carries_the_sources_metadata(source: str, fmt: OutputFormat, operations: list[Op]) -> None:
    result = process(SOURCES[source](), operations, OutputSpec(format=fmt), limits=ImageLimits())
    leaked = [name for name, marker in MARKERS.items() if marker in result.data]
    assert not leaked, f"{fmt.value} output from a {source} source carries {leaked}"


@pytest.mark.parametrize("source", list(SOURCES))
def test_keep_metadata_keeps_exif(source: str) -> None:
    result = process(
        SOURCES[source](), [], OutputSpec(format=OutputFormat.JPEG, keep_metadata=True), limits=ImageLimits()
    )
    assert MARKERS["artist"] in result.data
