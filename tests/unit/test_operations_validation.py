"""Operation and output validation (common.operations): every rule names the field it breaks."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from pixelflow.v1 import task_pb2

from common.errors import InvalidArgument
from common.operations import (
    MAX_OPERATIONS,
    OPERATION_KINDS,
    VALIDATED_KINDS,
    Adjust,
    Blur,
    Crop,
    Flip,
    FlipDirection,
    Gravity,
    Grayscale,
    OutputFormat,
    OutputSpec,
    Resize,
    ResizeFit,
    Rotate,
    Sharpen,
    parse_colour,
    parse_operations,
    parse_output,
)

pytestmark = pytest.mark.unit

Op = task_pb2.Operation


def refused(operations: list[task_pb2.Operation]) -> InvalidArgument:
    with pytest.raises(InvalidArgument) as caught:
        parse_operations(operations)
    return caught.value


def test_every_operation_parses_to_its_domain_value() -> None:
    parsed = parse_operations(
        [
            Op(resize=task_pb2.Resize(width=800, fit=task_pb2.RESIZE_FIT_COVER, background="#fff")),
            Op(crop=task_pb2.Crop(width=10, height=20, left=1, top=2)),
            Op(crop=task_pb2.Crop(width=10, height=20, gravity=task_pb2.GRAVITY_SOUTH_WEST)),
            Op(rotate=task_pb2.Rotate(angle=-90.5, background="#11223344")),
            Op(flip=task_pb2.Flip(direction=task_pb2.FLIP_DIRECTION_VERTICAL)),
            Op(grayscale=task_pb2.Grayscale()),
            Op(blur=task_pb2.Blur(sigma=2.5)),
            Op(sharpen=task_pb2.Sharpen()),
            Op(sharpen=task_pb2.Sharpen(sigma=0.5, amount=250)),
            Op(adjust=task_pb2.Adjust(brightness=0, saturation=2)),
        ]
    )
    assert parsed == [
        Resize(width=800, height=0, fit=ResizeFit.COVER, background=(255, 255, 255, 255)),
        Crop(width=10, height=20, left=1, top=2),
        Crop(width=10, height=20, gravity=Gravity.SOUTH_WEST),
        Rotate(angle=-90.5, background=(0x11, 0x22, 0x33, 0x44)),
        Flip(direction=FlipDirection.VERTICAL),
        Grayscale(),
        Blur(sigma=2.5),
        Sharpen(sigma=1.0, amount=100.0),
        Sharpen(sigma=0.5, amount=250.0),
        Adjust(brightness=0.0, contrast=1.0, saturation=2.0),
    ]


def test_resize_fit_defaults_to_contain() -> None:
    assert parse_operations([Op(resize=task_pb2.Resize(height=5))]) == [Resize(width=0, height=5)]


def test_no_operations_is_fine_and_the_limit_is_enforced() -> None:
    assert parse_operations([]) == []
    grey = Op(grayscale=task_pb2.Grayscale())
    assert len(parse_operations([grey] * MAX_OPERATIONS)) == MAX_OPERATIONS
    error = refused([grey] * (MAX_OPERATIONS + 1))
    assert error.field == "operations"
    assert str(MAX_OPERATIONS) in error.message


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("operation", "field", "words"),
    [
        (Op(), "operations[2]", "must set one of"),
        (Op(resize=task_pb2.Resize()), "operations[2].resize.width", "width, height"),
        (Op(resize=task_pb2.Resize(width=10_001)), "operations[2].resize.width", "10000"),
        (Op(resize=task_pb2.Resize(width=5, height=10_001)), "operations[2].resize.height", "10000"),
        (Op(resize=task_pb2.Resize(width=5, fit=99)), "operations[2].resize.fit", "unknown"),  # type: ignore[arg-type]
        (Op(resize=task_pb2.Resize(width=5, background="red")), "operations[2].resize.background", "#rrggbb"),
        (Op(resize=task_pb2.Resize(width=5, background="#12345")), "operations[2].resize.background", "#rgb"),
        (Op(resize=task_pb2.Resize(width=5, background="#ggg")), "operations[2].resize.background", "colour"),
        (Op(crop=task_pb2.Crop(height=5)), "operations[2].crop.width", "above 0"),
        (Op(crop=task_pb2.Crop(width=5)), "operations[2].crop.height", "above 0"),
        (Op(crop=task_pb2.Crop(width=10_001, height=5)), "operations[2].crop.width", "10000"),
        (Op(crop=task_pb2.Crop(width=5, height=5, left=0)), "operations[2].crop.top", "both"),
        (Op(crop=task_pb2.Crop(width=5, height=5, top=0)), "operations[2].crop.left", "both"),
        (
            Op(crop=task_pb2.Crop(width=5, height=5, left=0, top=0, gravity=task_pb2.GRAVITY_NORTH)),
            "operations[2].crop.gravity",
            "not both",
        ),
        (Op(crop=task_pb2.Crop(width=5, height=5, left=10_001, top=0)), "operations[2].crop.left", "10000"),
        (Op(crop=task_pb2.Crop(width=5, height=5, gravity=42)), "operations[2].crop.gravity", "unknown"),  # type: ignore[arg-type]
        (Op(rotate=task_pb2.Rotate(angle=NAN)), "operations[2].rotate.angle", "finite"),
        (Op(rotate=task_pb2.Rotate(angle=INF)), "operations[2].rotate.angle", "finite"),
        (Op(rotate=task_pb2.Rotate(angle=360.5)), "operations[2].rotate.angle", "between -360 and 360"),
        (Op(rotate=task_pb2.Rotate(angle=-361)), "operations[2].rotate.angle", "between"),
        (Op(rotate=task_pb2.Rotate(angle=10, background="#1234")), "operations[2].rotate.background", "colour"),
        (Op(flip=task_pb2.Flip()), "operations[2].flip.direction", "HORIZONTAL or VERTICAL"),
        (Op(blur=task_pb2.Blur()), "operations[2].blur.sigma", "between 0.3 and 100"),
        (Op(blur=task_pb2.Blur(sigma=0.2)), "operations[2].blur.sigma", "between"),
        (Op(blur=task_pb2.Blur(sigma=100.1)), "operations[2].blur.sigma", "between"),
        (Op(blur=task_pb2.Blur(sigma=NAN)), "operations[2].blur.sigma", "finite"),
        (Op(sharpen=task_pb2.Sharpen(sigma=0.2)), "operations[2].sharpen.sigma", "between 0.3 and 10"),
        (Op(sharpen=task_pb2.Sharpen(sigma=10.5)), "operations[2].sharpen.sigma", "between"),
        (Op(sharpen=task_pb2.Sharpen(sigma=-1)), "operations[2].sharpen.sigma", "between"),
        (Op(sharpen=task_pb2.Sharpen(sigma=NAN)), "operations[2].sharpen.sigma", "finite"),
        (Op(sharpen=task_pb2.Sharpen(amount=1000.5)), "operations[2].sharpen.amount", "between 0 and 1000"),
        (Op(sharpen=task_pb2.Sharpen(amount=-5)), "operations[2].sharpen.amount", "between"),
        (Op(sharpen=task_pb2.Sharpen(amount=INF)), "operations[2].sharpen.amount", "finite"),
        (Op(adjust=task_pb2.Adjust(brightness=-0.1)), "operations[2].adjust.brightness", "between 0 and 10"),
        (Op(adjust=task_pb2.Adjust(contrast=10.01)), "operations[2].adjust.contrast", "between"),
        (Op(adjust=task_pb2.Adjust(saturation=NAN)), "operations[2].adjust.saturation", "finite"),
        (Op(adjust=task_pb2.Adjust(saturation=-INF)), "operations[2].adjust.saturation", "finite"),
    ],
)
def test_bad_operations_are_refused_with_the_field_path(operation: task_pb2.Operation, field: str, words: str) -> None:
    good = Op(grayscale=task_pb2.Grayscale())
    error = refused([good, good, operation])
    assert error.field == field
    assert words in error.message
    assert error.details(), "the field travels as a google.rpc.BadRequest detail"


@pytest.mark.parametrize(
    "operation",
    [
        Op(resize=task_pb2.Resize(width=10_000, height=10_000)),
        Op(resize=task_pb2.Resize(width=1)),
        Op(crop=task_pb2.Crop(width=10_000, height=10_000, left=10_000, top=0)),
        Op(rotate=task_pb2.Rotate(angle=360)),
        Op(rotate=task_pb2.Rotate(angle=-360, background="#ABCDEF")),
        Op(blur=task_pb2.Blur(sigma=0.3)),
        Op(blur=task_pb2.Blur(sigma=100)),
        Op(sharpen=task_pb2.Sharpen(sigma=10, amount=1000)),
        Op(adjust=task_pb2.Adjust()),
        Op(adjust=task_pb2.Adjust(brightness=10, contrast=0, saturation=0)),
    ],
)
def test_values_on_the_limits_are_accepted(operation: task_pb2.Operation) -> None:
    assert len(parse_operations([operation])) == 1


@pytest.mark.parametrize(
    ("text", "rgba"),
    [
        ("", None),
        ("#fff", (255, 255, 255, 255)),
        ("#0A0b0C", (10, 11, 12, 255)),
        ("#00000080", (0, 0, 0, 128)),
    ],
)
def test_colours(text: str, rgba: tuple[int, int, int, int] | None) -> None:
    assert parse_colour(text, "x") == rgba


def test_output_defaults() -> None:
    assert parse_output(task_pb2.OutputOptions()) == OutputSpec()
    assert parse_output(
        task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_WEBP, quality=100, lossless=True, keep_metadata=True)
    ) == OutputSpec(format=OutputFormat.WEBP, quality=100, lossless=True, keep_metadata=True)


@pytest.mark.parametrize(
    ("output", "field", "words"),
    [
        (task_pb2.OutputOptions(quality=101), "output.quality", "1–100"),
        (task_pb2.OutputOptions(format=77), "output.format", "unknown"),  # type: ignore[arg-type]
        (task_pb2.OutputOptions(lossless=True), "output.format", "explicit output format"),
        (task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_JPEG, lossless=True), "output.lossless", "JPEG"),
        (task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_GIF, lossless=True), "output.lossless", "GIF"),
    ],
)
def test_bad_output_options_are_refused(output: task_pb2.OutputOptions, field: str, words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_output(output)
    assert caught.value.field == field
    assert words in caught.value.message


@pytest.mark.parametrize(
    "fmt",
    [task_pb2.IMAGE_FORMAT_WEBP, task_pb2.IMAGE_FORMAT_AVIF, task_pb2.IMAGE_FORMAT_PNG, task_pb2.IMAGE_FORMAT_TIFF],
)
def test_lossless_is_accepted_where_the_format_has_it(fmt: task_pb2.ImageFormat.ValueType) -> None:
    assert parse_output(task_pb2.OutputOptions(format=fmt, lossless=True)).lossless


def test_validators_cover_every_kind_in_the_proto() -> None:
    proto_kinds = {field.name for field in task_pb2.Operation.DESCRIPTOR.oneofs_by_name["kind"].fields}
    assert set(OPERATION_KINDS) == proto_kinds
    assert set(VALIDATED_KINDS) == proto_kinds


def test_importable_without_image_libraries() -> None:
    code = (
        "import sys; sys.modules['PIL'] = None; sys.modules['pyvips'] = None; "
        "import common.operations as o; assert o.parse_operations([]) == []"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
