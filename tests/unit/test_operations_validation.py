"""Operations and output options: the proto's rules (common.validation) name the field and the rule
each bad value breaks; tasks.operations turns valid ones into domain values."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from buf.validate import validate_pb2
from pixelflow.v1 import task_pb2

from common.errors import InvalidArgument
from common.validation import violations
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
    field = task_pb2.CreateTaskRequest.DESCRIPTOR.fields_by_name["operations"]
    limit = field.GetOptions().Extensions[validate_pb2.field].repeated.max_items
    assert limit == 20
    grey = Op(grayscale=task_pb2.Grayscale())
    assert not violations(task_pb2.CreateTaskRequest(source_url="https://x.test/a.png", operations=[grey] * limit))
    too_many = task_pb2.CreateTaskRequest(source_url="https://x.test/a.png", operations=[grey] * (limit + 1))
    assert [(v.field, v.rule) for v in violations(too_many)] == [("operations", "repeated.max_items")]


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(
    ("operation", "field", "rule"),
    [
        (Op(), "operations[2].kind", "required"),
        (Op(resize=task_pb2.Resize()), "operations[2].resize", "resize.size_required"),
        (Op(resize=task_pb2.Resize(width=10_001)), "operations[2].resize.width", "uint32.lte"),
        (Op(resize=task_pb2.Resize(width=5, height=10_001)), "operations[2].resize.height", "uint32.lte"),
        (Op(resize=task_pb2.Resize(width=5, fit=99)), "operations[2].resize.fit", "enum.defined_only"),  # type: ignore[arg-type]
        (Op(resize=task_pb2.Resize(width=5, background="red")), "operations[2].resize.background", "string.colour"),
        (Op(resize=task_pb2.Resize(width=5, background="#12345")), "operations[2].resize.background", "string.colour"),
        (Op(resize=task_pb2.Resize(width=5, background="#ggg")), "operations[2].resize.background", "string.colour"),
        (Op(crop=task_pb2.Crop(height=5)), "operations[2].crop.width", "uint32.gt_lte"),
        (Op(crop=task_pb2.Crop(width=5)), "operations[2].crop.height", "uint32.gt_lte"),
        (Op(crop=task_pb2.Crop(width=10_001, height=5)), "operations[2].crop.width", "uint32.gt_lte"),
        (Op(crop=task_pb2.Crop(width=5, height=5, left=0)), "operations[2].crop", "crop.box_needs_left_and_top"),
        (Op(crop=task_pb2.Crop(width=5, height=5, top=0)), "operations[2].crop", "crop.box_needs_left_and_top"),
        (
            Op(crop=task_pb2.Crop(width=5, height=5, left=0, top=0, gravity=task_pb2.GRAVITY_NORTH)),
            "operations[2].crop",
            "crop.box_or_gravity",
        ),
        (Op(crop=task_pb2.Crop(width=5, height=5, left=10_001, top=0)), "operations[2].crop.left", "uint32.lte"),
        (Op(crop=task_pb2.Crop(width=5, height=5, gravity=42)), "operations[2].crop.gravity", "enum.defined_only"),  # type: ignore[arg-type]
        (Op(rotate=task_pb2.Rotate(angle=NAN)), "operations[2].rotate.angle", "double.finite"),
        (Op(rotate=task_pb2.Rotate(angle=INF)), "operations[2].rotate.angle", "double.finite"),
        (Op(rotate=task_pb2.Rotate(angle=360.5)), "operations[2].rotate.angle", "double.gte_lte"),
        (Op(rotate=task_pb2.Rotate(angle=-361)), "operations[2].rotate.angle", "double.gte_lte"),
        (Op(rotate=task_pb2.Rotate(angle=10, background="#1234")), "operations[2].rotate.background", "string.colour"),
        (Op(flip=task_pb2.Flip()), "operations[2].flip.direction", "flip.direction"),
        (Op(blur=task_pb2.Blur()), "operations[2].blur.sigma", "double.gte_lte"),
        (Op(blur=task_pb2.Blur(sigma=0.2)), "operations[2].blur.sigma", "double.gte_lte"),
        (Op(blur=task_pb2.Blur(sigma=100.1)), "operations[2].blur.sigma", "double.gte_lte"),
        (Op(blur=task_pb2.Blur(sigma=NAN)), "operations[2].blur.sigma", "double.finite"),
        (Op(sharpen=task_pb2.Sharpen(sigma=0.2)), "operations[2].sharpen.sigma", "double.gte_lte"),
        (Op(sharpen=task_pb2.Sharpen(sigma=10.5)), "operations[2].sharpen.sigma", "double.gte_lte"),
        (Op(sharpen=task_pb2.Sharpen(sigma=-1)), "operations[2].sharpen.sigma", "double.gte_lte"),
        (Op(sharpen=task_pb2.Sharpen(sigma=NAN)), "operations[2].sharpen.sigma", "double.finite"),
        (Op(sharpen=task_pb2.Sharpen(amount=1000.5)), "operations[2].sharpen.amount", "double.gt_lte"),
        (Op(sharpen=task_pb2.Sharpen(amount=-5)), "operations[2].sharpen.amount", "double.gt_lte"),
        (Op(sharpen=task_pb2.Sharpen(amount=INF)), "operations[2].sharpen.amount", "double.finite"),
        (Op(adjust=task_pb2.Adjust(brightness=-0.1)), "operations[2].adjust.brightness", "double.factor"),
        (Op(adjust=task_pb2.Adjust(contrast=10.01)), "operations[2].adjust.contrast", "double.factor"),
        (Op(adjust=task_pb2.Adjust(saturation=NAN)), "operations[2].adjust.saturation", "double.factor"),
        (Op(adjust=task_pb2.Adjust(saturation=-INF)), "operations[2].adjust.saturation", "double.factor"),
    ],
)
def test_bad_operations_are_refused_with_the_field_path_and_rule(
    operation: task_pb2.Operation, field: str, rule: str
) -> None:
    good = Op(grayscale=task_pb2.Grayscale())
    error = refused([good, good, operation])
    assert (field, rule) in [(path, reason) for path, _, reason in error.violations]
    assert error.message.startswith(f"{error.violations[0][0]}: ")
    assert error.details(), "the violations travel as a google.rpc.BadRequest detail"


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
    assert parse_colour(text) == rgba


def test_output_defaults() -> None:
    assert parse_output(task_pb2.OutputOptions()) == OutputSpec()
    assert parse_output(
        task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_WEBP, quality=100, lossless=True, keep_metadata=True)
    ) == OutputSpec(format=OutputFormat.WEBP, quality=100, lossless=True, keep_metadata=True)


@pytest.mark.parametrize(
    ("output", "field", "rule"),
    [
        (task_pb2.OutputOptions(quality=101), "output.quality", "uint32.lte"),
        (task_pb2.OutputOptions(format=77), "output.format", "enum.defined_only"),  # type: ignore[arg-type]
        (task_pb2.OutputOptions(lossless=True), "output", "output.lossless_needs_format"),
        (task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_JPEG, lossless=True), "output", "output.lossless_format"),
        (task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_GIF, lossless=True), "output", "output.lossless_format"),
    ],
)
def test_bad_output_options_are_refused(output: task_pb2.OutputOptions, field: str, rule: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_output(output)
    assert [(path, reason) for path, _, reason in caught.value.violations] == [(field, rule)]


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
        "import tasks.operations as o; assert o.parse_operations([]) == []"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
