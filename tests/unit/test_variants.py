"""Several outputs from one decode (process_variants): each variant is what its own task would
give, the source is decoded once (at the size the largest variant needs), and the steps they
all begin with run once."""

from __future__ import annotations

import io
from typing import Any

import pytest
from PIL import Image

from bench.engine_quality import MIN_PSNR, MIN_SSIM, similarity
from bench.photos import photo
from tasks.operations import Crop, Grayscale, Op, OutputFormat, OutputSpec, Resize, ResizeFit, Rotate
from tests.images import encoded, image_bytes
from worker_svc.imaging import REGISTRY, ImageError, ImageLimits, Variant, pipeline, process, process_variants
from worker_svc.imaging.decode import Header, decode
from worker_svc.imaging.geometry import Size

pytestmark = pytest.mark.unit

LOSSLESS = OutputSpec(format=OutputFormat.PNG)
# The headline case: a thumbnail, a page image and a large one, in three formats.
SIZES = [
    Variant("thumb", [Resize(200, 200, fit=ResizeFit.INSIDE)], OutputSpec(format=OutputFormat.WEBP, quality=80)),
    Variant("page", [Resize(800, 800, fit=ResizeFit.INSIDE)], OutputSpec(format=OutputFormat.AVIF)),
    Variant("large", [Resize(1600, 1600, fit=ResizeFit.INSIDE)], OutputSpec(format=OutputFormat.JPEG, quality=85)),
]


def _decoded(result: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(result))
    image.load()
    return image.convert("RGB")


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> list[Size | None]:
    """The size each decode of the source was asked to shrink to (one entry per decode)."""
    seen: list[Size | None] = []

    def counting(header: Header, **options: Any) -> Image.Image:
        seen.append(options.get("shrink_to"))
        return decode(header, **options)

    monkeypatch.setattr(pipeline, "decode", counting)
    return seen


@pytest.mark.parametrize("source", ["JPEG", "PNG", "WEBP"])
def test_each_variant_matches_its_own_task(source: str, decodes: list[Size | None]) -> None:
    data = photo(source, (2400, 1600))
    as_png = [Variant(v.name, v.operations, LOSSLESS) for v in SIZES]  # only the engine differs
    together = process_variants(data, as_png)
    assert decodes == [(1600, 1067)]  # once, for the largest
    for variant, result in zip(as_png, together, strict=True):
        alone = process(data, variant.operations, variant.output)
        assert (result.width, result.height) == (alone.width, alone.height)
        psnr, ssim = similarity(_decoded(alone.data), _decoded(result.data))
        assert psnr >= MIN_PSNR and ssim >= MIN_SSIM, (variant.name, psnr, ssim)


def test_formats_names_and_order_are_each_variants() -> None:
    results = process_variants(photo("JPEG", (2400, 1600)), SIZES)
    assert [(r.format, r.width, r.content_type) for r in results] == [
        (OutputFormat.WEBP, 200, "image/webp"),
        (OutputFormat.AVIF, 800, "image/avif"),
        (OutputFormat.JPEG, 1600, "image/jpeg"),
    ]
    for result in results:
        with Image.open(io.BytesIO(result.data)) as image:
            assert image.size == (result.width, result.height)
    assert set(results[0].timings) == {"decode_ms", "process_ms", "encode_ms"}


def test_steps_all_variants_begin_with_run_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Size] = []
    grey = REGISTRY["grayscale"]

    def counted(image: Image.Image, op: Op, context: object) -> Image.Image:
        calls.append(image.size)
        return grey.apply(image, op, context)  # type: ignore[arg-type]

    monkeypatch.setitem(REGISTRY, "grayscale", type(grey)(counted, grey.size))
    shared: list[Op] = [Crop(1200, 1200), Grayscale()]
    variants = [Variant(v.name, [*shared, *v.operations], v.output) for v in SIZES]
    results = process_variants(photo("PNG", (2400, 1600)), variants)
    assert calls == [(1200, 1200)]  # the crop was cut while decoding, the grey made once
    assert [(r.width, r.height) for r in results] == [(200, 200), (800, 800), (1200, 1200)]


def test_a_variant_that_needs_the_whole_source_decodes_it_whole(decodes: list[Size | None]) -> None:
    data = photo("JPEG", (2400, 1600))
    variants = [SIZES[0], Variant("detail", [Crop(300, 300, left=10, top=10)], LOSSLESS)]
    results = process_variants(data, variants)
    assert decodes == [None]
    assert [(r.width, r.height) for r in results] == [(200, 133), (300, 300)]


def test_the_shrink_target_is_the_largest_on_each_side() -> None:
    # A stretch to 1000×100 and a fit to 800×533 of 2400×1600: 1000 wide, 533 high, then each resizes.
    steps: list[pipeline.Steps] = [
        ([Resize(1000, 100, fit=ResizeFit.FILL)], [(2400, 1600), (1000, 100)]),
        ([Resize(800, 800, fit=ResizeFit.INSIDE)], [(2400, 1600), (800, 533)]),
    ]
    assert pipeline._shared_shrink_target(steps) == (1000, 533)
    upscale: pipeline.Steps = (
        [Resize(4000, 4000, fit=ResizeFit.INSIDE, allow_upscale=True)],
        [(2400, 1600), (4000, 2667)],
    )
    assert pipeline._shared_shrink_target([*steps, upscale]) is None


def test_fills_by_output_split_the_shared_steps() -> None:
    # Rotating by 30° fills the corners with transparency for WebP and black for JPEG: not shared.
    data = image_bytes(400, 300)
    turn: list[Op] = [Rotate(30)]
    variants = [Variant("webp", turn, OutputSpec(format=OutputFormat.WEBP, lossless=True)),
                Variant("jpeg", turn, OutputSpec(format=OutputFormat.JPEG))]  # fmt: skip
    webp, jpeg = process_variants(data, variants)
    with Image.open(io.BytesIO(webp.data)) as transparent, Image.open(io.BytesIO(jpeg.data)) as opaque:
        corner_alpha = transparent.convert("RGBA").getpixel((0, 0))
        corner = opaque.convert("RGB").getpixel((0, 0))
        assert isinstance(corner_alpha, tuple) and corner_alpha[3] == 0
        assert isinstance(corner, tuple) and max(corner) < 16  # black, give or take JPEG


def test_keeping_the_colour_profile_decodes_apart(decodes: list[Size | None]) -> None:
    data = photo("JPEG", (1200, 800))
    variants = [SIZES[0], Variant("kept", SIZES[0].operations, OutputSpec(keep_color_profile=True))]
    process_variants(data, variants)
    assert len(decodes) == 2


def test_an_animation_is_kept_where_asked_and_flattened_elsewhere() -> None:
    frames = [Image.new("RGB", (120, 80), colour) for colour in ((255, 0, 0), (0, 255, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    variants = [
        Variant("moving", [Resize(60, 60, fit=ResizeFit.INSIDE)], OutputSpec(format=OutputFormat.WEBP)),
        Variant("still", [Resize(30, 30, fit=ResizeFit.INSIDE)], OutputSpec(format=OutputFormat.PNG)),
    ]
    moving, still = process_variants(buffer.getvalue(), variants)
    with Image.open(io.BytesIO(moving.data)) as animated, Image.open(io.BytesIO(still.data)) as flat:
        assert getattr(animated, "n_frames", 1) == 3 and animated.size == (60, 40)
        assert getattr(flat, "n_frames", 1) == 1 and flat.size == (30, 20)


def test_a_variant_over_a_limit_fails_the_task() -> None:
    limits = ImageLimits(max_output_side=1000)
    with pytest.raises(ImageError) as failed:
        process_variants(encoded(Image.new("RGB", (100, 100))), [
            SIZES[0], Variant("huge", [Resize(2000, 2000, allow_upscale=True)], LOSSLESS)
        ], limits=limits)  # fmt: skip
    assert failed.value.code.value == "OUTPUT_TOO_LARGE"
