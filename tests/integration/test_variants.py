"""Variants through the whole stack: one task, several outputs, each stored and fetched by name
(gRPC and REST), the first also as the task's result; bad variant lists refused with the field
named; every variant's blob deleted with the task."""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import grpc
import httpx
import pytest
from PIL import Image
from pixelflow.v1 import auth_pb2_grpc, task_pb2

from infra.stack import Stack
from pixelflow_client import Client, PixelFlowError
from pixelflow_client.operations import parse
from tests.conftest import register_and_login, result_blobs
from tests.images import image_bytes

pytestmark = pytest.mark.integration


@pytest.fixture
def token(auth: auth_pb2_grpc.AuthServiceStub) -> str:
    return register_and_login(auth).access_token


@pytest.fixture
def client(stack: Stack, token: str) -> Iterator[Client]:
    with Client(stack.gateway_address, access_token=token) as signed_in:
        yield signed_in


def _variant(name: str, width: int, image_format: int, *steps: str) -> task_pb2.Variant:
    return task_pb2.Variant(
        name=name,
        operations=[*(parse(step) for step in steps), parse(f"resize={width}")],
        output=task_pb2.OutputOptions(format=image_format),  # type: ignore[arg-type]
    )


VARIANTS = [
    _variant("thumb", 60, task_pb2.IMAGE_FORMAT_WEBP),
    _variant("page", 200, task_pb2.IMAGE_FORMAT_AVIF),
    _variant("large", 400, task_pb2.IMAGE_FORMAT_JPEG, "grayscale"),
]


def test_one_task_makes_every_variant(stack: Stack, client: Client, token: str) -> None:
    upload = client.upload(image_bytes(800, 600), filename="source.png")
    request = task_pb2.CreateTaskRequest(upload_id=upload.id, operations=[parse("flip=h")], variants=VARIANTS)
    task = client.wait_for(client.submit(request).id)
    assert task.status == task_pb2.TASK_STATUS_COMPLETED, task.error
    assert [variant.name for variant in task.variants] == ["thumb", "page", "large"]
    described = {each.name: each for each in task.variant_results}
    assert [(each.name, each.result.width, each.result.height, each.result.content_type)
            for each in task.variant_results] == [
        ("thumb", 60, 45, "image/webp"), ("page", 200, 150, "image/avif"), ("large", 400, 300, "image/jpeg")
    ]  # fmt: skip
    # The first variant is the task's result too.
    assert task.result.sha256 == described["thumb"].result.sha256 and task.result.timings.total_ms > 0
    assert client.result_bytes(task.id) == client.result_bytes(task.id, variant="thumb")

    for name, each in described.items():
        assert each.processed_url == f"http://{stack.gateway_address}/v1/tasks/{task.id}/variants/{name}"
        data = client.result_bytes(task.id, variant=name)
        assert hashlib.sha256(data).hexdigest() == each.result.sha256
        rest = httpx.get(each.processed_url, headers={"authorization": f"Bearer {token}"}, timeout=30)
        assert rest.status_code == 200 and rest.content == data
        assert rest.headers["content-type"] == each.result.content_type
        with Image.open(io.BytesIO(data)) as image:
            assert image.size == (each.result.width, each.result.height)
    with Image.open(io.BytesIO(client.result_bytes(task.id, variant="large"))) as large:
        assert large.mode == "L"  # its own grayscale step ran; the others kept colour
    missing = httpx.get(
        f"http://{stack.gateway_address}/v1/tasks/{task.id}/variants/poster",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert missing.status_code == 404 and "its variants are thumb, page, large" in missing.text

    assert len(result_blobs(stack, task.id)) == 3
    client.delete_task(task.id)
    assert result_blobs(stack, task.id) == []


@pytest.mark.parametrize(
    ("variants", "output", "field", "rule"),
    [
        ([_variant("a", 10, 0), _variant("a", 20, 0)], None, "variants", "create_task.variants_unique"),
        ([_variant("Big Size", 10, 0)], None, "variants[0].name", "variant.name"),
        ([_variant("a", 10, 0)], task_pb2.OutputOptions(quality=80), "", "create_task.variants_have_output"),
        ([task_pb2.Variant(name="a", operations=[task_pb2.Operation(resize=task_pb2.Resize())])], None,
         "variants[0].operations[0].resize", "resize.size_required"),
        ([_variant(f"v{n}", 10, 0) for n in range(11)], None, "variants", "repeated.max_items"),
    ],
)  # fmt: skip
def test_bad_variants_are_refused_with_the_field_named(
    client: Client,
    variants: list[task_pb2.Variant],
    output: task_pb2.OutputOptions | None,
    field: str,
    rule: str,
) -> None:
    request = task_pb2.CreateTaskRequest(source_url="https://example.com/a.png", variants=variants, output=output)
    with pytest.raises(PixelFlowError) as refused:
        client.submit(request)
    assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert (field, rule) in [(v.field, v.rule) for v in refused.value.violations]


def test_a_variants_watermark_must_be_the_callers(client: Client) -> None:
    variant = task_pb2.Variant(name="marked", operations=[parse("watermark=" + "f" * 32)])
    with pytest.raises(PixelFlowError) as refused:
        client.submit(task_pb2.CreateTaskRequest(source_url="https://example.com/a.png", variants=[variant]))
    assert refused.value.code == grpc.StatusCode.NOT_FOUND
    assert "variants[0].operations[0].watermark.upload_id" in refused.value.message


def test_a_task_without_variants_has_none(client: Client) -> None:
    upload = client.upload(image_bytes(40, 30))
    task = client.wait_for(client.create_task(upload_id=upload.id).id)
    assert task.status == task_pb2.TASK_STATUS_COMPLETED and not task.variant_results
    with pytest.raises(PixelFlowError) as refused:
        client.result_bytes(task.id, variant="thumb")
    assert refused.value.code == grpc.StatusCode.NOT_FOUND and "it has no variants" in refused.value.message
