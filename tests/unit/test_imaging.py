"""The worker's image pipeline (worker_svc.imaging) on tiny images made in code."""

from __future__ import annotations

import io
import struct
import time
import zlib
from typing import Any

import pytest
import pyvips  # type: ignore[import-untyped]
from PIL import Image, ImageCms, ImageFilter
from pixelflow.v1 import task_pb2

from tasks.failures import FailureCode
from tasks.operations import (
    OPERATION_KINDS,
    VALIDATED_KINDS,
    Adjust,
    Blur,
    Crop,
    Flip,
    FlipDirection,
    Gravity,
    Grayscale,
    Op,
    OutputFormat,
    OutputSpec,
    Resize,
    ResizeFit,
    Rotate,
    Sharpen,
)
from tests.images import encoded
from worker_svc.imaging import REGISTRY, ImageError, ImageLimits, ProcessedImage, process
from worker_svc.imaging.decode import decode, open_header

pytestmark = pytest.mark.unit

RED, BLUE = (220, 20, 20), (20, 20, 220)
ORIENTATION = 0x0112


def halves(size: tuple[int, int] = (40, 20)) -> Image.Image:
    """Left half red, right half blue: shows turns and mirrors."""
    image = Image.new("RGB", size, RED)
    image.paste(BLUE, (size[0] // 2, 0, size[0], size[1]))
    return image


def run(data: bytes, operations: list[Op], **output: Any) -> tuple[ProcessedImage, Image.Image]:
    result = process(data, operations, OutputSpec(**output), auto_orient=True, limits=ImageLimits())
    decoded = Image.open(io.BytesIO(result.data))
    decoded.load()
    assert decoded.size == (result.width, result.height)
    return result, decoded


def failure(data: bytes, operations: list[Op] | None = None, limits: ImageLimits | None = None) -> ImageError:
    with pytest.raises(ImageError) as caught:
        process(data, operations or [], OutputSpec(), auto_orient=True, limits=limits or ImageLimits())
    return caught.value


def close(pixel: Any, expected: tuple[int, ...], tolerance: int = 40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, expected, strict=True))


# ---- the same operations everywhere ------------------------------------------------------------


def test_proto_validators_and_registry_name_the_same_operations() -> None:
    proto = {field.name for field in task_pb2.Operation.DESCRIPTOR.oneofs_by_name["kind"].fields}
    assert proto == set(OPERATION_KINDS) == set(VALIDATED_KINDS) == set(REGISTRY)


# ---- formats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "pillow_name", "content_type"),
    [
        (OutputFormat.JPEG, "JPEG", "image/jpeg"),
        (OutputFormat.PNG, "PNG", "image/png"),
        (OutputFormat.WEBP, "WEBP", "image/webp"),
        (OutputFormat.AVIF, "AVIF", "image/avif"),
        (OutputFormat.GIF, "GIF", "image/gif"),
        (OutputFormat.TIFF, "TIFF", "image/tiff"),
    ],
)
@pytest.mark.parametrize("source_mode", ["RGB", "RGBA", "L", "P"])
def test_every_output_format(fmt: OutputFormat, pillow_name: str, content_type: str, source_mode: str) -> None:
    source = halves().convert(source_mode)
    result, decoded = run(encoded(source), [Resize(20, 10)], format=fmt)
    assert (result.format, result.content_type, decoded.format) == (fmt, content_type, pillow_name)
    assert decoded.size == (20, 10)
    assert set(result.timings) == {"decode_ms", "process_ms", "encode_ms"}
    if fmt is OutputFormat.JPEG:
        assert decoded.mode in ("RGB", "L")


@pytest.mark.parametrize(
    ("source_format", "expected"),
    [("JPEG", "JPEG"), ("PNG", "PNG"), ("WEBP", "WEBP"), ("GIF", "GIF"), ("TIFF", "TIFF"), ("BMP", "JPEG")],
)
def test_unspecified_output_keeps_a_writable_source_format(source_format: str, expected: str) -> None:
    _, decoded = run(encoded(halves(), source_format), [])
    assert decoded.format == expected


def test_avif_source_is_read() -> None:
    _, decoded = run(encoded(halves(), "AVIF"), [Flip(FlipDirection.HORIZONTAL)], format=OutputFormat.PNG)
    assert close(decoded.getpixel((0, 0)), BLUE)


def test_rgba_to_jpeg_flattens_on_white() -> None:
    _, decoded = run(encoded(Image.new("RGBA", (8, 8), (0, 0, 0, 0))), [], format=OutputFormat.JPEG)
    assert decoded.mode == "RGB"
    assert close(decoded.getpixel((4, 4)), (255, 255, 255), 3)


def test_transparency_survives_where_the_format_has_it() -> None:
    source = encoded(Image.new("RGBA", (8, 8), (0, 0, 0, 0)))
    for fmt in (OutputFormat.PNG, OutputFormat.WEBP, OutputFormat.AVIF, OutputFormat.TIFF, OutputFormat.GIF):
        _, decoded = run(source, [], format=fmt)
        assert decoded.convert("RGBA").getpixel((4, 4))[3] == 0, fmt  # type: ignore[index]


def test_lossless_webp_is_exact_and_quality_changes_jpeg_size() -> None:
    noisy = Image.effect_noise((64, 64), 60).convert("RGB")
    _, decoded = run(encoded(noisy), [], format=OutputFormat.WEBP, lossless=True)
    assert decoded.convert("RGB").tobytes() == noisy.tobytes()
    small, _ = run(encoded(noisy), [], format=OutputFormat.JPEG, quality=10)
    large, _ = run(encoded(noisy), [], format=OutputFormat.JPEG, quality=95)
    assert len(small.data) < len(large.data)


# ---- resize ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fit", "box", "expected"),
    [
        (ResizeFit.CONTAIN, (30, 30), (30, 30)),
        (ResizeFit.COVER, (30, 30), (30, 30)),
        (ResizeFit.FILL, (30, 10), (30, 10)),
        (ResizeFit.INSIDE, (30, 30), (30, 15)),
        (ResizeFit.OUTSIDE, (30, 30), (60, 30)),
        (ResizeFit.CONTAIN, (20, 0), (20, 10)),
        (ResizeFit.COVER, (0, 5), (10, 5)),
    ],
)
def test_fit_sizes(fit: ResizeFit, box: tuple[int, int], expected: tuple[int, int]) -> None:
    _, decoded = run(encoded(halves((80, 40))), [Resize(*box, fit=fit)])
    assert decoded.size == expected


def test_contain_pads_with_the_background_and_cover_crops_centred() -> None:
    _, padded = run(encoded(halves((40, 20))), [Resize(40, 40, background=(0, 255, 0, 255))])
    assert padded.getpixel((20, 2)) == (0, 255, 0)
    assert close(padded.getpixel((2, 20)), RED)
    _, transparent = run(encoded(halves((40, 20))), [Resize(40, 40)])
    assert transparent.mode == "RGBA"
    assert transparent.getpixel((20, 2))[3] == 0  # type: ignore[index]
    _, white = run(encoded(halves((40, 20))), [Resize(40, 40)], format=OutputFormat.JPEG)
    assert close(white.getpixel((20, 0)), (255, 255, 255), 8)
    _, covered = run(encoded(halves((40, 20))), [Resize(10, 10, fit=ResizeFit.COVER)])
    assert close(covered.getpixel((0, 5)), RED)
    assert close(covered.getpixel((9, 5)), BLUE)


@pytest.mark.parametrize(
    ("op", "expected"),
    [
        (Resize(100, 0), (40, 20)),
        (Resize(100, 100, fit=ResizeFit.INSIDE), (40, 20)),
        (Resize(100, 100, fit=ResizeFit.FILL), (40, 20)),
        (Resize(100, 10, fit=ResizeFit.FILL), (40, 10)),
        (Resize(100, 100, fit=ResizeFit.COVER), (40, 20)),
        (Resize(100, 100, fit=ResizeFit.CONTAIN), (100, 100)),  # padded, the image itself not enlarged
        (Resize(100, 0, allow_upscale=True), (100, 50)),
        (Resize(100, 100, fit=ResizeFit.OUTSIDE, allow_upscale=True), (200, 100)),
    ],
)
def test_no_upscaling_unless_allowed(op: Resize, expected: tuple[int, int]) -> None:
    _, decoded = run(encoded(halves((40, 20))), [op])
    assert decoded.size == expected


@pytest.fixture
def jpeg_loads(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, object]]:
    """The options of every libvips JPEG load the test makes, in order."""
    loads: list[dict[str, object]] = []
    load = pyvips.Image.jpegload_buffer

    def spy(buffer: bytes, **options: object) -> object:
        loads.append(options)
        return load(buffer, **options)

    monkeypatch.setattr(pyvips.Image, "jpegload_buffer", spy)
    return loads


def test_shrink_on_load_decodes_a_jpeg_at_a_fraction_and_lands_on_the_planned_size(
    jpeg_loads: list[dict[str, object]],
) -> None:
    data = encoded(halves((1601, 1203)), "JPEG")
    header = open_header(data, ImageLimits(), auto_orient=True)
    assert decode(header, shrink_to=(200, 150)).size == (200, 150)
    # 8× smaller: decoded at 1/4 in the DCT domain, leaving 2× for the Lanczos reduce.
    assert [options.get("shrink") for options in jpeg_loads] == [4]
    result, _ = run(data, [Resize(200, 0)])
    assert (result.width, result.height) == (200, 150)


def test_fast_shrink_on_load_shrinks_the_whole_way(jpeg_loads: list[dict[str, object]]) -> None:
    data = encoded(halves((1601, 1203)), "JPEG")
    result = process(data, [Resize(200, 0)], OutputSpec(format=OutputFormat.PNG), fast_shrink_on_load=True)
    # 8× smaller: all of it in the DCT domain (4 without the option: the test above)
    assert [options.get("shrink") for options in jpeg_loads] == [8]
    assert (result.width, result.height) == (200, 150)


@pytest.mark.parametrize("fast", [False, True])
def test_a_jpeg_shrunk_on_load_keeps_its_far_edge_in_place(fast: bool) -> None:
    """libvips drops a JPEG's last, partial block when it shrinks on load (750 rows by 8 → 93,
    not 93.75): scaled by the pixels it hands over, the image would stretch and a band at the
    bottom would land most of a pixel low."""
    source = Image.new("L", (1000, 750), 0)
    source.paste(255, (0, 675, 1000, 750))  # the bottom tenth white: its edge at 90% of the height
    data = encoded(source, "JPEG")
    result = process(data, [Resize(111, 0)], OutputSpec(format=OutputFormat.PNG), fast_shrink_on_load=fast)
    rows = Image.open(io.BytesIO(result.data)).convert("L").resize((1, 83), Image.Resampling.BOX)
    brightness = [rows.getpixel((0, y)) for y in range(83)]
    # the edge lies at 0.9 × 83 = 74.7 rows: sums of brightness say where it was put
    edge = 83 - sum(brightness) / 255  # type: ignore[arg-type]
    assert abs(edge - 74.7) < 0.25, f"the edge at row {edge:.2f}"


@pytest.mark.parametrize(
    ("before", "resize", "shrink", "size"),
    [
        ([Rotate(90)], Resize(150, 0), 4, (150, 200)),  # turned after the resize, on the small image
        ([Flip(FlipDirection.VERTICAL), Grayscale(), Rotate(180)], Resize(200, 0), 4, (200, 150)),
        ([Blur(1)], Resize(200, 0), None, (200, 150)),  # a blur at full size is not one at 1/8
        ([Rotate(30)], Resize(200, 0), None, None),  # a free turn changes the canvas: no shrink
    ],
)
def test_steps_that_commute_with_a_downscale_still_let_the_decoder_shrink(
    jpeg_loads: list[dict[str, object]],
    before: list[Op],
    resize: Resize,
    shrink: int | None,
    size: tuple[int, int] | None,
) -> None:
    data = encoded(halves((1601, 1203)), "JPEG")
    _, decoded = run(data, [*before, resize])
    assert [options.get("shrink") for options in jpeg_loads] == ([shrink] if shrink else [])
    if size is not None:
        assert decoded.size == size


# ---- the other operations ----------------------------------------------------------------------


def test_crop_by_box_and_by_gravity() -> None:
    _, boxed = run(encoded(halves((40, 20))), [Crop(10, 5, left=25, top=10)])
    assert boxed.size == (10, 5)
    assert close(boxed.getpixel((0, 0)), BLUE)
    _, west = run(encoded(halves((40, 20))), [Crop(10, 20, gravity=Gravity.WEST)])
    assert close(west.getpixel((9, 10)), RED)
    _, east = run(encoded(halves((40, 20))), [Crop(10, 20, gravity=Gravity.SOUTH_EAST)])
    assert close(east.getpixel((0, 0)), BLUE)
    _, clamped = run(encoded(halves((40, 20))), [Crop(100, 10, gravity=Gravity.NORTH)])
    assert clamped.size == (40, 10)


def test_a_crop_box_outside_the_image_is_an_invalid_operation() -> None:
    error = failure(encoded(halves((40, 20))), [Crop(10, 10, left=35, top=0)])
    assert error.code is FailureCode.INVALID_OPERATION
    assert "outside the 40×20 image" in error.message


def test_rotate_clockwise_with_background_and_expand() -> None:
    _, quarter = run(encoded(halves((40, 20))), [Rotate(90)])
    assert quarter.size == (20, 40)
    assert close(quarter.getpixel((10, 5)), RED)  # the left half turns to the top
    _, tilted = run(encoded(halves((40, 20))), [Rotate(30, background=(0, 255, 0, 255))])
    assert tilted.size[0] > 40 and tilted.size[1] > 20
    assert tilted.getpixel((0, 0)) == (0, 255, 0)
    _, black = run(encoded(halves((40, 20))), [Rotate(-45)], format=OutputFormat.JPEG)
    assert close(black.getpixel((0, 0)), (0, 0, 0), 8)
    _, clear = run(encoded(halves((40, 20))), [Rotate(45)], format=OutputFormat.PNG)
    assert clear.getpixel((0, 0))[3] == 0  # type: ignore[index]


def test_flip() -> None:
    _, mirrored = run(encoded(halves()), [Flip(FlipDirection.HORIZONTAL)])
    assert close(mirrored.getpixel((0, 0)), BLUE)
    top_red = Image.new("RGB", (10, 10), BLUE)
    top_red.paste(RED, (0, 0, 10, 5))
    _, flipped = run(encoded(top_red), [Flip(FlipDirection.VERTICAL)])
    assert close(flipped.getpixel((5, 9)), RED)


def test_grayscale_keeps_alpha() -> None:
    _, grey = run(encoded(halves()), [Grayscale()])
    assert grey.mode == "L"
    _, grey_alpha = run(encoded(halves().convert("RGBA")), [Grayscale()])
    assert grey_alpha.mode == "LA"


def test_blur_and_sharpen_change_edges_not_flat_areas() -> None:
    source = encoded(halves((40, 20)))
    _, blurred = run(source, [Blur(3)])
    edge = blurred.getpixel((20, 10))
    assert not close(edge, RED, 30) and not close(edge, BLUE, 30)
    assert close(blurred.getpixel((2, 10)), RED, 5)
    soft = halves((40, 20)).filter(ImageFilter.GaussianBlur(2))
    _, sharpened = run(encoded(soft), [Sharpen(sigma=2, amount=300)])
    assert sharpened.size == (40, 20)
    # Contrast across the edge grows: the pixel just left of it is redder than in the soft image.
    assert sharpened.getpixel((18, 10))[0] > soft.getpixel((18, 10))[0]  # type: ignore[index]


def test_adjust() -> None:
    grey = encoded(Image.new("RGB", (8, 8), (100, 100, 100)))
    _, brighter = run(grey, [Adjust(brightness=2.0)])
    assert close(brighter.getpixel((4, 4)), (200, 200, 200), 2)
    _, desaturated = run(encoded(Image.new("RGB", (8, 8), RED)), [Adjust(saturation=0.0)])
    red, green, blue = desaturated.getpixel((4, 4))  # type: ignore[misc]
    assert red == green == blue
    _, flat = run(encoded(halves()), [Adjust(contrast=0.0)])
    assert flat.getpixel((0, 0)) == flat.getpixel((39, 0))
    _, unchanged = run(encoded(halves()), [Adjust()])
    assert unchanged.tobytes() == halves().tobytes()


def test_operations_run_in_order() -> None:
    _, result = run(encoded(halves((40, 20))), [Rotate(90), Resize(10, 0), Crop(10, 5, gravity=Gravity.NORTH)])
    assert result.size == (10, 5)
    assert close(result.getpixel((5, 2)), RED)


# ---- orientation and metadata ------------------------------------------------------------------


def exif_jpeg(orientation: int, icc: bool = False) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PixelFlow test camera"  # Make
    options: dict[str, Any] = {"exif": exif.tobytes(), "quality": 95}
    if icc:
        options["icc_profile"] = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encoded(halves((40, 20)), "JPEG", **options)


def test_exif_orientation_is_applied_and_metadata_stripped() -> None:
    _, upright = run(exif_jpeg(6, icc=True), [])
    assert upright.size == (20, 40)
    assert close(upright.getpixel((10, 5)), RED)  # orientation 6: turned 90° clockwise
    assert not upright.getexif()
    assert "icc_profile" not in upright.info


def test_auto_orient_can_be_skipped() -> None:
    result = process(exif_jpeg(6), [], OutputSpec(keep_metadata=True), auto_orient=False, limits=ImageLimits())
    stored = Image.open(io.BytesIO(result.data))
    assert stored.size == (40, 20)
    assert stored.getexif()[ORIENTATION] == 6


@pytest.mark.parametrize("fmt", [OutputFormat.JPEG, OutputFormat.WEBP, OutputFormat.PNG])
def test_keep_metadata_keeps_exif_and_icc_without_the_orientation(fmt: OutputFormat) -> None:
    _, kept = run(exif_jpeg(6, icc=True), [], format=fmt, keep_metadata=True)
    assert kept.size == (20, 40)
    exif = kept.getexif()
    assert exif[0x010F] == "PixelFlow test camera"
    assert exif.get(ORIENTATION, 1) == 1
    assert kept.info.get("icc_profile")


# ---- bad input ---------------------------------------------------------------------------------


def png_claiming(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    )


def test_a_12_gigapixel_png_header_fails_fast() -> None:
    started = time.perf_counter()
    error = failure(png_claiming(120_000, 100_000))
    assert error.code is FailureCode.IMAGE_TOO_LARGE
    assert time.perf_counter() - started < 0.05


def test_the_pixel_limit_is_ours_not_only_pillows() -> None:
    error = failure(png_claiming(300, 200), limits=ImageLimits(max_pixels=50_000))
    assert error.code is FailureCode.IMAGE_TOO_LARGE
    assert "300×200" in error.message


def test_the_output_limit_is_checked_before_decoding() -> None:
    error = failure(png_claiming(9000, 5000), [Resize(10_000, 10_000, fit=ResizeFit.OUTSIDE, allow_upscale=True)])
    assert error.code is FailureCode.OUTPUT_TOO_LARGE


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", FailureCode.UNSUPPORTED_IMAGE),
        (b"just some text, not an image", FailureCode.UNSUPPORTED_IMAGE),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>',
            FailureCode.UNSUPPORTED_IMAGE,
        ),
        (b"%PDF-1.7\n", FailureCode.UNSUPPORTED_IMAGE),
        (b"8BPS\x00\x01" + bytes(40), FailureCode.UNSUPPORTED_IMAGE),  # PSD
        (b"%!PS-Adobe-3.0 EPSF-3.0\n", FailureCode.UNSUPPORTED_IMAGE),
        (b"\x00\x00\x01\x00\x01\x00" + bytes(40), FailureCode.UNSUPPORTED_IMAGE),  # ICO
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", FailureCode.UNSUPPORTED_IMAGE),
        (b"\x89PNG\r\n\x1a\n" + b"garbage" * 10, FailureCode.CORRUPT_IMAGE),
        (b"GIF89a", FailureCode.CORRUPT_IMAGE),
    ],
)
def test_bad_inputs(data: bytes, code: FailureCode) -> None:
    assert failure(data).code is code


def test_a_truncated_jpeg_is_corrupt_not_padded() -> None:
    whole = encoded(Image.effect_noise((256, 256), 50).convert("RGB"), "JPEG")
    error = failure(whole[: len(whole) * 2 // 3])
    assert error.code is FailureCode.CORRUPT_IMAGE


def test_a_pillow_decoder_outside_the_allowlist_is_never_tried() -> None:
    # A BMP magic in front of an ICO: the sniffer says BMP and only the BMP decoder may run.
    ico = encoded(Image.new("RGB", (16, 16)), "ICO")
    assert failure(b"BM" + ico[2:]).code is FailureCode.CORRUPT_IMAGE


def animated_gif(frames: int) -> bytes:
    images = [Image.new("RGB", (8, 8), (index * 40, 0, 0)) for index in range(frames)]
    return encoded(images[0], "GIF", save_all=True, append_images=images[1:], duration=50)


def test_animations_keep_their_first_frame_and_too_many_frames_are_refused() -> None:
    result, first = run(animated_gif(3), [], format=OutputFormat.PNG)
    assert getattr(first, "n_frames", 1) == 1 and result.width == 8
    error = failure(animated_gif(5), limits=ImageLimits(max_frames=4))
    assert error.code is FailureCode.IMAGE_TOO_LARGE
    assert "more than 4 frames" in error.message
