"""Presets on the real stack: PresetService over gRPC (api_svc directly and through Envoy) and
REST, CreateTask from a preset (the task keeps the pipeline it was created with), the per-user
cap, isolation between users and idempotency with a preset."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
import httpx
import pytest
from google.api import httpbody_pb2
from google.rpc import error_details_pb2, status_pb2
from PIL import Image
from pixelflow.v1 import auth_pb2_grpc, preset_pb2, preset_pb2_grpc, task_pb2, task_pb2_grpc

from api_svc.presets import MAX_PAGE_SIZE
from infra.stack import Stack
from tests.conftest import TEST_PASSWORD, bearer, register_and_login, result_bytes, unique_email
from tests.images import ImageServer, encoded, image_bytes

pytestmark = pytest.mark.integration

# api_svc's default (ApiSettings.max_presets_per_user): the session stack runs with it.
MAX_PRESETS = 100
NAME_RULE = "string.preset_name"


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/photo.png", image_bytes(320, 240, "PNG"), "image/png")
    with server.running():
        yield server


@pytest.fixture(scope="module")
def channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.address("api_svc")) as opened:
        yield opened


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{stack.gateway_address}", timeout=30) as client:
        yield client


class User:
    """One logged-in user's PresetService and TaskService."""

    def __init__(self, auth: auth_pb2_grpc.AuthServiceStub, channel: grpc.Channel) -> None:
        login = register_and_login(auth)
        self.access_token = login.access_token
        self.metadata = bearer(login.access_token)
        self.presets = preset_pb2_grpc.PresetServiceStub(channel)
        self.tasks = task_pb2_grpc.TaskServiceStub(channel)

    def create_preset(self, name: str, **fields: Any) -> preset_pb2.Preset:
        preset: preset_pb2.Preset = self.presets.CreatePreset(
            preset_pb2.CreatePresetRequest(name=name, **fields), metadata=self.metadata
        )
        return preset

    def create_task(self, **fields: Any) -> task_pb2.Task:
        task: task_pb2.Task = self.tasks.CreateTask(task_pb2.CreateTaskRequest(**fields), metadata=self.metadata)
        return task

    def get_task(self, task_id: str) -> task_pb2.Task:
        task: task_pb2.Task = self.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id), metadata=self.metadata)
        return task

    def finished(self, task_id: str) -> task_pb2.Task:
        final = None
        for update in self.tasks.WatchTask(
            task_pb2.WatchTaskRequest(task_id=task_id), metadata=self.metadata, timeout=30
        ):
            final = update.task
        assert final is not None
        return final


@pytest.fixture
def user(auth: auth_pb2_grpc.AuthServiceStub, channel: grpc.Channel) -> User:
    return User(auth, channel)


def refused(call: Any) -> tuple[grpc.StatusCode, str, list[tuple[str, str]]]:
    """The status code, message and (field, rule id) violations of a call that must fail."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    violations: list[tuple[str, str]] = []
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            for detail in status_pb2.Status.FromString(value).details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    violations += [(v.field, v.reason) for v in bad.field_violations]
    return error.code(), error.details(), violations


THUMB_OPERATIONS = [
    task_pb2.Operation(resize=task_pb2.Resize(width=64)),
    task_pb2.Operation(grayscale=task_pb2.Grayscale()),
]
WEBP = task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_WEBP, quality=70)


def test_presets_are_created_listed_fetched_updated_and_deleted(user: User) -> None:
    created = user.create_preset("thumb", operations=THUMB_OPERATIONS, output=WEBP)
    assert created.name == "thumb" and list(created.operations) == THUMB_OPERATIONS and created.output == WEBP
    assert created.created_at == created.updated_at and created.owner_id
    user.create_preset("hero-webp", operations=[task_pb2.Operation(resize=task_pb2.Resize(width=1600))])

    fetched = user.presets.GetPreset(preset_pb2.GetPresetRequest(name="thumb"), metadata=user.metadata)
    assert fetched == created
    listed = user.presets.ListPresets(preset_pb2.ListPresetsRequest(), metadata=user.metadata)
    assert [p.name for p in listed.presets] == ["hero-webp", "thumb"] and listed.next_page_token == ""

    blur = [task_pb2.Operation(blur=task_pb2.Blur(sigma=2))]
    updated = user.presets.UpdatePreset(
        preset_pb2.UpdatePresetRequest(name="thumb", operations=blur), metadata=user.metadata
    )
    assert list(updated.operations) == blur and updated.output == task_pb2.OutputOptions()  # replaced whole
    assert (
        updated.created_at == created.created_at and updated.updated_at.ToDatetime() >= created.updated_at.ToDatetime()
    )

    user.presets.DeletePreset(preset_pb2.DeletePresetRequest(name="thumb"), metadata=user.metadata)
    code, message, _ = refused(
        lambda: user.presets.GetPreset(preset_pb2.GetPresetRequest(name="thumb"), metadata=user.metadata)
    )
    assert code == grpc.StatusCode.NOT_FOUND and "thumb" in message
    for call in (
        lambda: user.presets.DeletePreset(preset_pb2.DeletePresetRequest(name="thumb"), metadata=user.metadata),
        lambda: user.presets.UpdatePreset(preset_pb2.UpdatePresetRequest(name="thumb"), metadata=user.metadata),
    ):
        assert refused(call)[0] == grpc.StatusCode.NOT_FOUND
    # The name is free again.
    assert user.create_preset("thumb").name == "thumb"


def test_names_and_pipelines_are_checked_when_a_preset_is_saved(user: User) -> None:
    user.create_preset("web_1")
    code, message, _ = refused(lambda: user.create_preset("web_1"))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "web_1" in message

    for bad in ("", "Thumb", "-lead", "with space", "dots.no", "é", "a" * 65):
        code, _, violations = refused(lambda bad=bad: user.create_preset(bad))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and violations == [("name", NAME_RULE)], bad
    assert user.create_preset("a" * 64).name == "a" * 64

    # The same rules as CreateTask's operations and output.
    code, message, violations = refused(
        lambda: user.create_preset(
            "bad",
            operations=[task_pb2.Operation(resize=task_pb2.Resize(width=10001))],
            output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_JPEG, lossless=True),
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message.startswith("operations[0].resize.width")
    assert sorted(violations) == [("operations[0].resize.width", "uint32.lte"), ("output", "output.lossless_format")]
    too_many = [task_pb2.Operation(grayscale=task_pb2.Grayscale())] * 21
    assert refused(lambda: user.create_preset("long", operations=too_many))[2] == [("operations", "repeated.max_items")]
    code, _, violations = refused(
        lambda: user.presets.UpdatePreset(
            preset_pb2.UpdatePresetRequest(name="web_1", operations=[task_pb2.Operation(blur=task_pb2.Blur(sigma=0))]),
            metadata=user.metadata,
        )
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and violations == [("operations[0].blur.sigma", "double.gte_lte")]
    # What only the service can check: a watermark must be one of the caller's uploads.
    mark = task_pb2.Operation(watermark=task_pb2.Watermark(upload_id="0" * 32))
    code, message, _ = refused(lambda: user.create_preset("marked", operations=[mark]))
    assert code == grpc.StatusCode.NOT_FOUND and "operations[0].watermark.upload_id" in message
    assert [
        p.name for p in user.presets.ListPresets(preset_pb2.ListPresetsRequest(), metadata=user.metadata).presets
    ] == [
        "a" * 64,
        "web_1",
    ]


def test_another_users_presets_are_invisible(
    user: User, auth: auth_pb2_grpc.AuthServiceStub, channel: grpc.Channel, images: ImageServer
) -> None:
    user.create_preset("mine", operations=THUMB_OPERATIONS)
    stranger = User(auth, channel)
    for call in (
        lambda: stranger.presets.GetPreset(preset_pb2.GetPresetRequest(name="mine"), metadata=stranger.metadata),
        lambda: stranger.presets.UpdatePreset(preset_pb2.UpdatePresetRequest(name="mine"), metadata=stranger.metadata),
        lambda: stranger.presets.DeletePreset(preset_pb2.DeletePresetRequest(name="mine"), metadata=stranger.metadata),
        lambda: stranger.create_task(source_url=images.url("/photo.png"), preset="mine"),
    ):
        assert refused(call)[0] == grpc.StatusCode.NOT_FOUND
    assert not stranger.presets.ListPresets(preset_pb2.ListPresetsRequest(), metadata=stranger.metadata).presets
    # The same name is theirs to use, and is a preset of their own.
    assert stranger.create_preset("mine").operations == []
    assert list(
        user.presets.GetPreset(preset_pb2.GetPresetRequest(name="mine"), metadata=user.metadata).operations
    ) == (THUMB_OPERATIONS)
    # Without a token: 401 before anything else, even for an invalid name.
    code, _, _ = refused(lambda: stranger.presets.GetPreset(preset_pb2.GetPresetRequest(name="BAD")))
    assert code == grpc.StatusCode.UNAUTHENTICATED


def test_a_user_may_keep_a_limited_number_of_presets_and_pages_are_capped(user: User) -> None:
    names = [f"p{index:03d}" for index in range(MAX_PRESETS - 10)]
    for name in names:
        user.create_preset(name)
    # Racing creates near the cap: never more than the cap, whoever wins.
    racing = [f"race-{index}" for index in range(20)]

    def create(name: str) -> grpc.StatusCode:
        try:
            user.create_preset(name)
        except grpc.RpcError as exc:
            return exc.code()
        return grpc.StatusCode.OK

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(create, racing))
    assert set(codes) <= {grpc.StatusCode.OK, grpc.StatusCode.RESOURCE_EXHAUSTED}
    while (kept := _all_names(user)) and len(kept) < MAX_PRESETS:
        user.create_preset(f"fill-{len(kept)}")
    assert len(_all_names(user)) == MAX_PRESETS
    code, message, _ = refused(lambda: user.create_preset("one-more"))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and str(MAX_PRESETS) in message
    # Deleting one makes room again.
    user.presets.DeletePreset(preset_pb2.DeletePresetRequest(name=names[0]), metadata=user.metadata)
    user.create_preset("one-more")

    # Pages: at most MAX_PAGE_SIZE whatever is asked, in name order, with a token to go on.
    page = user.presets.ListPresets(preset_pb2.ListPresetsRequest(page_size=1000), metadata=user.metadata)
    assert len(page.presets) == min(MAX_PAGE_SIZE, MAX_PRESETS) and page.next_page_token == ""
    first = user.presets.ListPresets(preset_pb2.ListPresetsRequest(page_size=30), metadata=user.metadata)
    assert len(first.presets) == 30 and first.next_page_token
    code, _, violations = refused(
        lambda: user.presets.ListPresets(preset_pb2.ListPresetsRequest(page_token="!!nonsense"), metadata=user.metadata)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and violations == [("page_token", "page_token.known")]


def _all_names(user: User) -> list[str]:
    names: list[str] = []
    token = ""
    while True:
        page = user.presets.ListPresets(
            preset_pb2.ListPresetsRequest(page_size=7, page_token=token), metadata=user.metadata
        )
        names += [p.name for p in page.presets]
        token = page.next_page_token
        if not token:
            assert names == sorted(names) and len(set(names)) == len(names)
            return names


def test_a_task_from_a_preset_runs_its_pipeline_and_keeps_it(user: User, images: ImageServer, stack: Stack) -> None:
    user.create_preset("thumb", operations=THUMB_OPERATIONS, output=WEBP)
    created = user.create_task(source_url=images.url("/photo.png"), preset="thumb")
    assert created.preset == "thumb" and list(created.operations) == THUMB_OPERATIONS and created.output == WEBP

    final = user.finished(created.id)
    assert final.status == task_pb2.TASK_STATUS_COMPLETED, final.error
    assert (final.result.width, final.result.height, final.result.format) == (64, 48, task_pb2.IMAGE_FORMAT_WEBP)
    content_type, data = result_bytes(user.tasks, created.id, user.metadata)
    assert content_type == "image/webp"
    with Image.open(io.BytesIO(data)) as result:
        assert result.size == (64, 48)
        pixel = result.convert("RGB").getpixel((10, 10))
        assert isinstance(pixel, tuple) and max(pixel) - min(pixel) <= 2  # grayscale

    # Changing, then deleting the preset leaves the task's stored pipeline as it was.
    user.presets.UpdatePreset(
        preset_pb2.UpdatePresetRequest(name="thumb", operations=[task_pb2.Operation(blur=task_pb2.Blur(sigma=3))]),
        metadata=user.metadata,
    )
    again = user.get_task(created.id)
    assert list(again.operations) == THUMB_OPERATIONS and again.output == WEBP and again.preset == "thumb"
    user.presets.DeletePreset(preset_pb2.DeletePresetRequest(name="thumb"), metadata=user.metadata)
    again = user.get_task(created.id)
    assert list(again.operations) == THUMB_OPERATIONS and again.output == WEBP
    assert again.result.sha256 == final.result.sha256

    code, message, _ = refused(lambda: user.create_task(source_url=images.url("/photo.png"), preset="thumb"))
    assert code == grpc.StatusCode.NOT_FOUND and "thumb" in message


def test_a_preset_goes_with_no_operations_or_output(user: User, images: ImageServer) -> None:
    user.create_preset("gray", operations=[task_pb2.Operation(grayscale=task_pb2.Grayscale())])
    for extra in ({"operations": THUMB_OPERATIONS}, {"output": task_pb2.OutputOptions()}):
        code, message, violations = refused(
            lambda extra=extra: user.create_task(source_url=images.url("/photo.png"), preset="gray", **extra)
        )
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "preset" in message and "operations" in message and "output" in message
        assert violations == [("", "create_task.preset_or_pipeline")]
    code, _, violations = refused(lambda: user.create_task(source_url=images.url("/photo.png"), preset="Gray!"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and violations == [("preset", NAME_RULE)]
    # skip_auto_orient is the task's own, and goes with a preset.
    task = user.create_task(source_url=images.url("/photo.png"), preset="gray", skip_auto_orient=True)
    assert task.skip_auto_orient and user.finished(task.id).status == task_pb2.TASK_STATUS_COMPLETED


def test_idempotency_with_a_preset(user: User, images: ImageServer) -> None:
    user.create_preset("small", operations=[task_pb2.Operation(resize=task_pb2.Resize(width=32))])
    fields: dict[str, Any] = {"source_url": images.url("/photo.png"), "preset": "small", "idempotency_key": "p-1"}
    first = user.create_task(**fields)
    assert user.create_task(**fields).id == first.id
    # A retry is the same request even after the preset changed, or is gone.
    user.presets.UpdatePreset(
        preset_pb2.UpdatePresetRequest(name="small", operations=[task_pb2.Operation(resize=task_pb2.Resize(width=16))]),
        metadata=user.metadata,
    )
    assert user.create_task(**fields).id == first.id
    user.presets.DeletePreset(preset_pb2.DeletePresetRequest(name="small"), metadata=user.metadata)
    again = user.create_task(**fields)
    assert again.id == first.id and again.operations[0].resize.width == 32
    # The same key with another preset, or with operations instead, is another request.
    user.create_preset("other")
    for changed in (
        {"preset": "other"},
        {"preset": "", "operations": [task_pb2.Operation(resize=task_pb2.Resize(width=32))]},
    ):
        code, message, _ = refused(lambda changed=changed: user.create_task(**{**fields, **changed}))
        assert code == grpc.StatusCode.ALREADY_EXISTS and "idempotency_key" in message


def test_a_presets_watermark_is_the_owners_upload(
    user: User, auth: auth_pb2_grpc.AuthServiceStub, channel: grpc.Channel
) -> None:
    logo = encoded(Image.new("RGBA", (20, 10), (0, 0, 255, 255)))
    upload = user.tasks.CreateUpload(
        iter([task_pb2.CreateUploadRequest(filename="logo.png", body=httpbody_pb2.HttpBody(data=logo))]),
        metadata=user.metadata,
    )
    mark = task_pb2.Operation(watermark=task_pb2.Watermark(upload_id=upload.id, margin=5))
    user.create_preset("branded", operations=[mark], output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_PNG))
    source = task_pb2.InlineUpload(content=encoded(Image.new("RGB", (200, 100), (255, 255, 255))), filename="w.png")
    task = user.create_task(upload=source, preset="branded")
    assert user.finished(task.id).status == task_pb2.TASK_STATUS_COMPLETED
    _, data = result_bytes(user.tasks, task.id, user.metadata)
    with Image.open(io.BytesIO(data)) as result:
        assert result.convert("RGB").getpixel((200 - 5 - 10, 100 - 5 - 5)) == (0, 0, 255)

    stranger = User(auth, channel)
    code, message, _ = refused(lambda: stranger.create_preset("branded", operations=[mark]))
    assert code == grpc.StatusCode.NOT_FOUND and upload.id in message


# -- through the gateway -------------------------------------------------------------------------
def _rest_login(http: httpx.Client) -> dict[str, str]:
    email = unique_email("preset")
    assert http.post("/v1/auth/register", json={"email": email, "password": TEST_PASSWORD}).status_code == 200
    tokens = http.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    return {"authorization": f"Bearer {tokens.json()['accessToken']}"}


def test_presets_over_rest(http: httpx.Client, images: ImageServer) -> None:
    headers = _rest_login(http)
    body = {
        "name": "hero-webp",
        "operations": [{"resize": {"width": 100}}],
        "output": {"format": "IMAGE_FORMAT_WEBP", "quality": 80},
    }
    created = http.post("/v1/presets", headers=headers, json=body)
    assert created.status_code == 200, created.text
    assert created.json()["name"] == "hero-webp" and created.json()["operations"][0]["resize"]["width"] == 100
    assert http.post("/v1/presets", headers=headers, json=body).status_code == 409

    bad = http.post("/v1/presets", headers=headers, json={**body, "name": "Hero WebP"})
    assert bad.status_code == 400
    violation = bad.json()["details"][0]["fieldViolations"][0]
    assert (violation["field"], violation["reason"]) == ("name", NAME_RULE)
    assert "lower-case" in violation["description"]
    bad = http.post("/v1/presets", headers=headers, json={**body, "name": "x", "operations": [{"resize": {}}]})
    assert bad.status_code == 400 and bad.json()["details"][0]["fieldViolations"][0]["field"] == "operations[0].resize"

    assert http.get("/v1/presets/hero-webp", headers=headers).json()["output"]["format"] == "IMAGE_FORMAT_WEBP"
    assert [p["name"] for p in http.get("/v1/presets", headers=headers).json()["presets"]] == ["hero-webp"]
    assert http.get("/v1/presets/unknown", headers=headers).status_code == 404
    assert http.get("/v1/presets/NOT.A.NAME", headers=headers).status_code == 400
    assert http.get("/v1/presets").status_code == 401

    task = http.post("/v1/tasks", headers=headers, json={"sourceUrl": images.url("/photo.png"), "preset": "hero-webp"})
    assert task.status_code == 200, task.text
    assert task.json()["preset"] == "hero-webp" and task.json()["operations"][0]["resize"]["width"] == 100
    both = http.post(
        "/v1/tasks",
        headers=headers,
        json={"sourceUrl": images.url("/photo.png"), "preset": "hero-webp", "operations": [{"grayscale": {}}]},
    )
    assert both.status_code == 400
    assert "preset" in both.json()["message"] and "operations" in both.json()["message"]
    with http.stream("GET", f"/v1/tasks/{task.json()['id']}:watch", headers=headers) as stream:
        final = [json.loads(line) for line in stream.iter_lines() if line.strip()][-1]["task"]
    assert final["status"] == "TASK_STATUS_COMPLETED" and final["result"]["width"] == 100

    replaced = http.put("/v1/presets/hero-webp", headers=headers, json={"operations": [{"grayscale": {}}]})
    assert replaced.status_code == 200 and list(replaced.json()["operations"][0]) == ["grayscale"]
    kept = http.get(f"/v1/tasks/{task.json()['id']}", headers=headers).json()["operations"]
    assert len(kept) == 1 and kept[0]["resize"]["width"] == 100
    stranger = _rest_login(http)
    assert http.get("/v1/presets/hero-webp", headers=stranger).status_code == 404
    assert http.delete("/v1/presets/hero-webp", headers=stranger).status_code == 404
    assert http.delete("/v1/presets/hero-webp", headers=headers).status_code == 200
    assert http.get("/v1/presets/hero-webp", headers=headers).status_code == 404


def test_presets_over_grpc_through_the_gateway(stack: Stack) -> None:
    with grpc.insecure_channel(stack.gateway_address) as channel:
        user = User(auth_pb2_grpc.AuthServiceStub(channel), channel)
        user.create_preset("via-envoy", output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_PNG))
        names = [
            p.name for p in user.presets.ListPresets(preset_pb2.ListPresetsRequest(), metadata=user.metadata).presets
        ]
        assert names == ["via-envoy"]
        code, _, _ = refused(lambda: user.create_preset("via-envoy"))
        assert code == grpc.StatusCode.ALREADY_EXISTS


def test_the_rest_cap_is_429(http: httpx.Client, auth: auth_pb2_grpc.AuthServiceStub, channel: grpc.Channel) -> None:
    user = User(auth, channel)
    for index in range(MAX_PRESETS):
        user.create_preset(f"n{index}")
    full = http.post("/v1/presets", headers={"authorization": f"Bearer {user.access_token}"}, json={"name": "over"})
    assert full.status_code == 429 and str(MAX_PRESETS) in full.json()["message"]
