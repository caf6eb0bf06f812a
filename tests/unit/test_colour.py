"""Colours come out right, checked numerically: ΔE (CIE 1976, in Lab) of known patches.

Sources are made with the profiles libvips ships (sRGB, Display P3, CMYK), and with an Adobe RGB
(1998) profile built here from its published primaries (neither library ships one): the same known sRGB
patches are converted into each source's colour space, written with (or without) the profile,
and processed; the result must show the patches' sRGB colours again. Each test also checks that
the naive reading (what the engine did before: pixels taken as sRGB, CMYK by formula) is far off,
so that it could not pass without the conversion.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
import pyvips  # type: ignore[import-untyped]
from PIL import Image, ImageCms

from tasks.operations import OutputFormat, OutputSpec, Resize, ResizeFit
from worker_svc.imaging import process

# Skin, sky, foliage, a warm orange, a mid grey, a deep blue: sRGB, inside every gamut here.
PATCHES = [(224, 172, 150), (90, 150, 210), (70, 130, 60), (230, 120, 40), (128, 128, 128), (40, 50, 120)]
PATCH = 16  # pixels a side
_SRGB_TO_LAB = ImageCms.buildTransform(ImageCms.createProfile("sRGB"), ImageCms.createProfile("LAB"), "RGB", "LAB")


def patches_srgb() -> pyvips.Image:
    """The patches side by side, as an sRGB libvips image."""
    strip = np.zeros((PATCH, PATCH * len(PATCHES), 3), dtype=np.uint8)
    for index, colour in enumerate(PATCHES):
        strip[:, index * PATCH : (index + 1) * PATCH] = colour
    return pyvips.Image.new_from_array(strip, interpretation="srgb")


def in_profile(name: str) -> pyvips.Image:
    """The patches converted into one of libvips' built-in profiles, which stays attached."""
    return patches_srgb().icc_transform(name, input_profile="srgb", intent="relative")


def without_profile(image: pyvips.Image) -> pyvips.Image:
    copy = image.copy()
    copy.remove("icc-profile-data")
    return copy


def patch_colours(data: bytes) -> list[tuple[int, int, int]]:
    """The centre pixel of each patch of a result (resized results scale the strip)."""
    image = Image.open(io.BytesIO(data))
    assert image.mode == "RGB", image.mode
    step = image.width / len(PATCHES)
    colours = [image.getpixel((int(step * (index + 0.5)), image.height // 2)) for index in range(len(PATCHES))]
    return [tuple(colour) for colour in colours]  # type: ignore[arg-type, misc]


def delta_e(colours: list[tuple[int, int, int]], expected: list[tuple[int, int, int]] = PATCHES) -> float:
    """The largest ΔE*ab between `colours` and `expected` (the patches)."""

    def lab(values: list[tuple[int, int, int]]) -> np.ndarray:
        strip = Image.new("RGB", (len(values), 1))
        strip.putdata(values)
        converted = ImageCms.applyTransform(strip, _SRGB_TO_LAB)
        assert converted is not None
        raw = np.asarray(converted, dtype=np.float64).reshape(-1, 3)
        # Pillow's 8-bit LAB: L in 0–255 for 0–100, a and b offset by 128.
        return np.column_stack([raw[:, 0] * 100 / 255, raw[:, 1] - 128, raw[:, 2] - 128])

    return float(np.max(np.linalg.norm(lab(colours) - lab(expected), axis=1)))


def run(data: bytes, *, resize: bool = False, spec: OutputSpec | None = None) -> bytes:
    operations = [Resize(48, 8, fit=ResizeFit.FILL)] if resize else []
    return process(data, operations, spec or OutputSpec(format=OutputFormat.PNG)).data


def cmyk_samples() -> np.ndarray:
    return np.ndarray(
        buffer=without_profile(in_profile("cmyk")).write_to_memory(), dtype=np.uint8, shape=(PATCH, PATCH * 6, 4)
    )


def cmyk_reference() -> list[tuple[int, int, int]]:
    """What the CMYK patches are in sRGB by the CMYK profile, computed by Pillow's own littlecms
    binding (not libvips'): sRGB → CMYK → sRGB is not the identity (SWOP's gamut is smaller)."""
    profile = ImageCms.ImageCmsProfile(io.BytesIO(in_profile("cmyk").get("icc-profile-data")))
    converted = ImageCms.profileToProfile(
        Image.fromarray(cmyk_samples(), "CMYK"),
        profile,
        ImageCms.createProfile("sRGB"),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
        outputMode="RGB",
    )
    assert converted is not None
    buffer = io.BytesIO()
    converted.save(buffer, "PNG")
    return patch_colours(buffer.getvalue())


def naive_srgb(data: bytes) -> list[tuple[int, int, int]]:
    """The old reading: the stored pixels taken as sRGB (CMYK by Pillow's formula)."""
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).convert("RGB").save(buffer, "PNG")
    return patch_colours(buffer.getvalue())


@pytest.mark.parametrize("resize", [False, True], ids=["full size", "shrunk on load"])
@pytest.mark.parametrize("container", ["png", "jpeg", "webp", "tiff"])
def test_display_p3_sources_come_out_as_their_srgb_colours(container: str, resize: bool) -> None:
    source = in_profile("p3")
    data = bytes(
        source.jpegsave_buffer(Q=100, subsample_mode="off")
        if container == "jpeg"
        else source.webpsave_buffer(lossless=True)
        if container == "webp"
        else source.tiffsave_buffer()
        if container == "tiff"
        else source.pngsave_buffer()
    )
    assert delta_e(naive_srgb(data)) > 5  # washed out when the profile is ignored
    result = run(data, resize=resize)
    assert delta_e(patch_colours(result)) < 2
    assert Image.open(io.BytesIO(result)).info.get("icc_profile") is None  # sRGB: none needed


@pytest.mark.parametrize("resize", [False, True], ids=["full size", "shrunk on load"])
@pytest.mark.parametrize("profile", [True, False], ids=["embedded profile", "no profile"])
def test_cmyk_jpegs_come_out_as_their_srgb_colours(profile: bool, resize: bool) -> None:
    cmyk = in_profile("cmyk")
    data = bytes((cmyk if profile else without_profile(cmyk)).jpegsave_buffer(Q=100))
    # libvips writes CMYK as Photoshop does: an Adobe APP14 marker and inverted samples.
    assert Image.open(io.BytesIO(data)).info.get("adobe") is not None
    assert delta_e(naive_srgb(data), cmyk_reference()) > 10
    assert delta_e(patch_colours(run(data, resize=resize)), cmyk_reference()) < 2


def test_a_cmyk_tiff_comes_out_as_its_srgb_colours() -> None:
    data = bytes(without_profile(in_profile("cmyk")).tiffsave_buffer())
    assert delta_e(patch_colours(run(data)), cmyk_reference()) < 2


def test_a_cmyk_jpeg_without_the_adobe_marker_is_read_the_same() -> None:
    """Photoshop and libvips store CMYK inverted under an Adobe APP14 marker; a file without the
    marker holds plain samples. Both must come out the same."""
    buffer = io.BytesIO()
    Image.fromarray(cmyk_samples(), "CMYK").save(buffer, "JPEG", quality=100)
    data = _without_segment(buffer.getvalue(), 0xEE)
    assert b"Adobe" not in data
    stored = np.asarray(Image.open(io.BytesIO(data)), dtype=int)
    assert np.abs(stored - cmyk_samples()).max() <= 2  # the fixture holds the plain samples
    assert delta_e(patch_colours(run(data)), cmyk_reference()) < 2


def _without_segment(jpeg: bytes, marker: int) -> bytes:
    """The JPEG with every APPn segment of one kind removed (they all come before the scan)."""
    out, position = bytearray(jpeg[:2]), 2
    while jpeg[position] == 0xFF and jpeg[position + 1] != 0xDA:  # until start of scan
        length = int.from_bytes(jpeg[position + 2 : position + 4], "big")
        if jpeg[position + 1] != marker:
            out += jpeg[position : position + 2 + length]
        position += 2 + length
    return bytes(out + jpeg[position:])


def test_keeping_the_colour_profile_leaves_the_pixels_and_embeds_the_profile() -> None:
    source = in_profile("p3")
    result = run(bytes(source.pngsave_buffer()), spec=OutputSpec(format=OutputFormat.PNG, keep_color_profile=True))
    image = Image.open(io.BytesIO(result))
    assert image.info.get("icc_profile") == source.get("icc-profile-data")
    stored = np.ndarray(buffer=source.write_to_memory(), dtype=np.uint8, shape=(PATCH, PATCH * 6, 3))
    assert np.array_equal(np.asarray(image), stored)
    # …and a viewer that honours the profile shows the patches.
    shown = ImageCms.profileToProfile(
        image, ImageCms.ImageCmsProfile(io.BytesIO(image.info["icc_profile"])), ImageCms.createProfile("sRGB")
    )
    assert shown is not None
    buffer = io.BytesIO()
    shown.save(buffer, "PNG")
    assert delta_e(patch_colours(buffer.getvalue())) < 2


def test_cmyk_is_converted_even_when_the_profile_is_kept() -> None:
    data = bytes(in_profile("cmyk").jpegsave_buffer(Q=100))
    result = run(data, spec=OutputSpec(format=OutputFormat.JPEG, quality=100, keep_color_profile=True))
    assert Image.open(io.BytesIO(result)).info.get("icc_profile") is None  # no CMYK profile on RGB pixels
    assert delta_e(patch_colours(result), cmyk_reference()) < 2


def test_an_srgb_profile_is_left_alone_and_a_broken_one_ignored() -> None:
    srgb = bytes(patches_srgb().icc_transform("srgb", input_profile="srgb").pngsave_buffer())
    assert patch_colours(run(srgb)) == PATCHES
    broken = Image.fromarray(np.ndarray(buffer=patches_srgb().write_to_memory(), dtype=np.uint8, shape=(16, 96, 3)))
    buffer = io.BytesIO()
    broken.save(buffer, "PNG", icc_profile=b"not a profile at all" * 8)
    assert patch_colours(run(buffer.getvalue())) == PATCHES


@pytest.mark.parametrize("container", ["png", "tiff"])
@pytest.mark.parametrize("bands", [1, 3], ids=["grey", "rgb"])
def test_16_bit_sources_round_to_8_bits_without_banding_or_clipping(container: str, bands: int) -> None:
    """A full 16-bit ramp: every output level is the rounded input (no bias, no clipping at
    either end), and all 256 levels appear in order."""
    ramp = np.tile(np.linspace(0, 65535, 1024).round().astype(np.uint16), (4, 1))
    pixels = np.repeat(ramp[..., None], bands, axis=2) if bands == 3 else ramp
    image = pyvips.Image.new_from_array(pixels, interpretation="rgb16" if bands == 3 else "grey16")
    data = bytes(image.tiffsave_buffer() if container == "tiff" else image.pngsave_buffer())
    result = np.asarray(Image.open(io.BytesIO(run(data))))
    row = result[0] if bands == 1 else result[0, :, 0]
    expected = np.floor(ramp[0] / 257 + 0.5).astype(np.uint8)
    assert np.array_equal(row, expected)
    assert row[0] == 0 and row[-1] == 255 and len(np.unique(row)) == 256 and np.all(np.diff(row.astype(int)) >= 0)


@pytest.mark.parametrize("resize", [False, True], ids=["full size", "shrunk on load"])
def test_grey_with_alpha_stays_grey_with_alpha(resize: bool) -> None:
    source = Image.new("LA", (96, 16), (90, 255))
    source.paste((200, 64), (48, 0, 96, 16))
    buffer = io.BytesIO()
    source.save(buffer, "PNG")
    result = Image.open(io.BytesIO(run(buffer.getvalue(), resize=resize)))
    assert result.mode == "LA"
    assert result.getpixel((result.width // 4, result.height // 2)) == (90, 255)
    assert result.getpixel((3 * result.width // 4, result.height // 2)) == (200, 64)


def test_a_profile_of_the_wrong_colour_space_falls_back_to_the_default() -> None:
    """A CMYK JPEG tagged with an RGB profile, an RGB PNG tagged with a CMYK one: the profile
    cannot apply, so the standard one for the pixels' space is used instead of failing."""

    def tagged(image: pyvips.Image, profile: bytes) -> pyvips.Image:
        copy = image.copy()
        copy.set_type(pyvips.GValue.blob_type, "icc-profile-data", profile)
        return copy

    cmyk, p3 = in_profile("cmyk"), in_profile("p3")
    cmyk_as_rgb = bytes(tagged(cmyk, p3.get("icc-profile-data")).jpegsave_buffer(Q=100))
    assert delta_e(patch_colours(run(cmyk_as_rgb)), cmyk_reference()) < 2
    rgb_as_cmyk = bytes(tagged(patches_srgb(), cmyk.get("icc-profile-data")).pngsave_buffer())
    assert patch_colours(run(rgb_as_cmyk)) == PATCHES


def _s15(value: float) -> bytes:
    return struct.pack(">i", round(value * 65536))


def _xyz(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def adobe_rgb_profile() -> bytes:
    """A matrix/TRC ICC v2 profile of Adobe RGB (1998): its published primaries adapted to D50
    (Bradford) and a 563/256 gamma."""
    desc_text = b"Adobe RGB (1998) compatible, built by the test\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(desc_text)) + desc_text + b"\0" * 4 + b"\0" * 4 + b"\0" * 67
    curve = b"curv" + b"\0" * 4 + struct.pack(">I", 1) + struct.pack(">H", 563) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", _xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz(0.60974, 0.31111, 0.01947)),
        (b"gXYZ", _xyz(0.20528, 0.62567, 0.06087)),
        (b"bXYZ", _xyz(0.14919, 0.06322, 0.74457)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for signature, data in tags:
        while (offset + len(body)) % 4:
            body += b"\0"
        table += signature + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"none"
        + bytes([2, 0x10, 0, 0])
        + b"mntr"
        + b"RGB "
        + b"XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"\0" * 4
        + b"\0" * 4
        + b"\0" * 4
        + b"\0" * 4
        + b"\0" * 8
        + b"\0" * 4
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 4
        + b"\0" * 16
        + b"\0" * 28
    )
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + body


@pytest.mark.parametrize("container", ["PNG", "JPEG"])
def test_adobe_rgb_sources_come_out_as_their_srgb_colours(container: str) -> None:
    profile = adobe_rgb_profile()
    strip = Image.fromarray(np.ndarray(buffer=patches_srgb().write_to_memory(), dtype=np.uint8, shape=(16, 96, 3)))
    adobe = ImageCms.profileToProfile(
        strip,
        ImageCms.createProfile("sRGB"),
        ImageCms.ImageCmsProfile(io.BytesIO(profile)),
        renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC,
    )
    assert adobe is not None
    buffer = io.BytesIO()
    adobe.save(
        buffer, container, icc_profile=profile, **({"quality": 100, "subsampling": 0} if container == "JPEG" else {})
    )
    data = buffer.getvalue()
    assert delta_e(naive_srgb(data)) > 5  # washed out when the profile is ignored
    assert delta_e(patch_colours(run(data))) < 2
