"""The gateway's REST (gRPC-JSON transcoding) and gRPC-web faces, with real HTTP clients."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from google.api import httpbody_pb2
from PIL import Image
from pixelflow.v1 import auth_pb2, task_pb2

from infra.stack import Stack
from tests.conftest import TEST_PASSWORD, unique_email
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{stack.gateway_address}", timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/photo.png", image_bytes(300, 200), "image/png")
    with server.running():
        yield server


def login(http: httpx.Client, *, seed_paths: bool = False) -> dict[str, str]:
    email = unique_email("rest")
    register = http.post(
        "/register" if seed_paths else "/v1/auth/register", json={"email": email, "password": TEST_PASSWORD}
    )
    assert register.status_code == 200, register.text
    tokens = http.post("/login" if seed_paths else "/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
    assert tokens.status_code == 200, tokens.text
    return {"authorization": f"Bearer {tokens.json()['accessToken']}"}


def test_health_reports_every_upstream(http: httpx.Client) -> None:
    response = http.get("/health")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "SERVING",
        "gateway": "SERVING",
        "upstreams": {"auth_svc": "SERVING", "api_svc": "SERVING", "worker_svc": "SERVING"},
    }


def test_auth_over_rest_with_seed_and_v1_paths(http: httpx.Client) -> None:
    headers = login(http, seed_paths=True)
    me = http.get("/v1/auth/me", headers=headers)
    assert me.status_code == 200 and me.json()["email"].startswith("rest-")
    assert http.get("/validate", headers=headers).json()["userId"] == me.json()["id"]

    duplicate = http.post("/v1/auth/register", json={"email": me.json()["email"], "password": TEST_PASSWORD})
    assert duplicate.status_code == 409
    assert "already exists" in duplicate.json()["message"]
    bad = http.post("/v1/auth/register", json={"email": "nope", "password": TEST_PASSWORD})
    assert bad.status_code == 400 and bad.json()["details"][0]["fieldViolations"][0]["field"] == "email"
    wrong = http.post("/v1/auth/login", json={"email": me.json()["email"], "password": "wrong password"})
    assert wrong.status_code == 401
    assert http.get("/v1/auth/me").status_code == 401


def test_task_flow_over_rest(http: httpx.Client, images: ImageServer) -> None:
    headers = login(http)
    created = http.post(
        "/v1/tasks",
        headers=headers,
        json={
            "sourceUrl": images.url("/photo.png"),
            "operations": [{"resize": {"width": 150}}, {"flip": {"direction": "FLIP_DIRECTION_HORIZONTAL"}}],
            "output": {"format": "IMAGE_FORMAT_JPEG", "quality": 80},
        },
    )
    assert created.status_code == 200, created.text
    task = created.json()
    assert task["status"] == "TASK_STATUS_PENDING"

    # WatchTask over REST: newline-delimited JSON, one object per change, ending at the terminal state.
    with http.stream("GET", f"/v1/tasks/{task['id']}:watch", headers=headers) as stream:
        assert stream.status_code == 200
        updates = [json.loads(line) for line in stream.iter_lines() if line.strip()]
    assert updates[-1]["task"]["status"] == "TASK_STATUS_COMPLETED"
    assert updates[-1]["task"]["processedUrl"].endswith(f"/v1/tasks/{task['id']}/result")

    result = http.get(f"/v1/tasks/{task['id']}/result", headers=headers)
    assert result.status_code == 200 and result.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(result.content)).size == (150, 100)

    listed = http.get("/v1/tasks", headers=headers, params={"pageSize": 5}).json()
    assert task["id"] in [t["id"] for t in listed["tasks"]]
    assert task["id"] in [t["id"] for t in http.get("/api/tasks", headers=headers).json()["tasks"]]

    stranger = login(http)
    assert http.get(f"/v1/tasks/{task['id']}", headers=stranger).status_code == 404
    assert http.get(f"/v1/tasks/{task['id']}/result", headers=stranger).status_code == 404
    assert http.get("/v1/tasks", headers=headers, params={"colour": "red"}).status_code == 400
    assert http.get("/v1/tasks").status_code == 401

    deleted = http.delete(f"/v1/tasks/{task['id']}", headers=headers)
    assert deleted.status_code == 200
    assert http.get(f"/v1/tasks/{task['id']}", headers=headers).status_code == 404


def test_upload_over_rest_as_base64_json(http: httpx.Client) -> None:
    headers = login(http)
    content = base64.b64encode(image_bytes(120, 90, "JPEG")).decode()
    created = http.post(
        "/api/upload",
        headers=headers,
        json={"upload": {"content": content, "filename": "x.jpg"}, "output": {"format": "IMAGE_FORMAT_PNG"}},
    )
    assert created.status_code == 200, created.text
    assert created.json()["upload"]["contentType"] == "image/jpeg"
    bad = http.post("/v1/tasks", headers=headers, json={"upload": {"content": base64.b64encode(b"GIF? no").decode()}})
    assert bad.status_code == 400


def test_raw_upload_over_rest_feeds_tasks(http: httpx.Client) -> None:
    """The README's walkthrough: curl --data-binary @photo.jpg -H 'content-type: image/jpeg'."""
    headers = login(http)
    photo = image_bytes(240, 160, "JPEG")
    stored = http.post("/v1/uploads", params={"filename": "photo.jpg"}, content=photo, headers=headers | _JPEG)
    assert stored.status_code == 200, stored.text
    upload = stored.json()
    assert upload["filename"] == "photo.jpg" and upload["contentType"] == "image/jpeg"
    assert int(upload["sizeBytes"]) == len(photo) and upload["sha256"] == hashlib.sha256(photo).hexdigest()

    created = http.post(
        "/v1/tasks",
        headers=headers,
        json={
            "uploadId": upload["id"],
            "operations": [{"resize": {"width": 60}}],
            "output": {"format": "IMAGE_FORMAT_PNG"},
        },
    )
    assert created.status_code == 200, created.text
    task_id = created.json()["id"]
    with http.stream("GET", f"/v1/tasks/{task_id}:watch", headers=headers) as stream:
        final = [json.loads(line) for line in stream.iter_lines() if line.strip()][-1]["task"]
    assert final["status"] == "TASK_STATUS_COMPLETED", final
    result = http.get(f"/v1/tasks/{task_id}/result", headers=headers)
    assert result.status_code == 200 and result.headers["content-type"] == "image/png"
    assert hashlib.sha256(result.content).hexdigest() == final["result"]["sha256"]
    assert Image.open(io.BytesIO(result.content)).size == (60, 40)

    stranger = login(http)
    assert http.post("/v1/tasks", headers=stranger, json={"uploadId": upload["id"]}).status_code == 404
    assert http.post("/v1/uploads", content=photo, headers=_JPEG).status_code == 401
    refused = http.post("/v1/uploads", content=b"<html>not an image</html>", headers=headers | _JPEG)
    assert refused.status_code == 400 and "not an image" in refused.json()["message"]
    assert http.post("/v1/uploads", content=b"", headers=headers | _JPEG).status_code == 400


_JPEG = {"content-type": "image/jpeg"}


def test_oversized_json_body_is_refused_at_the_gateway(http: httpx.Client) -> None:
    body = json.dumps({"email": "a@example.com", "password": "x" * (30 * 1024 * 1024)})
    response = http.post("/v1/auth/login", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413


def _client_from(stack: Stack, address: str) -> httpx.Client:
    """A client whose connections come from `address` (any of 127.0.0.0/8 is this machine)."""
    transport = httpx.HTTPTransport(local_address=address)
    return httpx.Client(base_url=f"http://{stack.gateway_address}", timeout=30, transport=transport)


def test_login_bursts_are_throttled_per_client_address_at_the_gateway(stack: Stack) -> None:
    """One address's burst is throttled (429); another address logs in meanwhile, and the tests
    after this one (from 127.0.0.1) are not slowed down by it."""
    body = {"email": unique_email("burst"), "password": TEST_PASSWORD}
    with _client_from(stack, "127.0.0.3") as noisy, _client_from(stack, "127.0.0.4") as quiet:
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(lambda _: noisy.post("/v1/auth/login", json=body).status_code, range(60)))
        assert 429 in codes

        # Right after, another address has its whole burst (15 of its 20, each for an account of
        # its own, so that no account lockout counts): every one is let through and checked. One
        # bucket for everyone would be empty here.
        def other(_: int) -> int:
            return quiet.post("/v1/auth/login", json={**body, "email": unique_email("other")}).status_code

        with ThreadPoolExecutor(15) as pool:
            assert list(pool.map(other, range(15))) == [401] * 15


def test_guesses_from_one_address_do_not_lock_the_owner_out(stack: Stack) -> None:
    email = unique_email("owner")
    with _client_from(stack, "127.0.0.5") as attacker, _client_from(stack, "127.0.0.6") as owner:
        assert attacker.post("/v1/auth/register", json={"email": email, "password": TEST_PASSWORD}).status_code == 200
        guesses = [attacker.post("/v1/auth/login", json={"email": email, "password": f"guess-{i}"}) for i in range(5)]
        assert [guess.status_code for guess in guesses] == [401] * 5
        # The attacker's address is locked out of the account, even with the right password ...
        locked = attacker.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD})
        assert locked.status_code == 429 and "from your address" in locked.json()["message"]
        # ... and the owner, elsewhere, is not.
        assert owner.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}).status_code == 200


def _grpc_web_frame(message: bytes) -> bytes:
    return b"\x00" + struct.pack(">I", len(message)) + message


def _decode_text(body: bytes) -> bytes:
    """grpc-web-text: each frame is base64 on its own, so padding may appear mid-stream."""
    decoded, chunk = b"", b""
    for index in range(0, len(body), 4):
        chunk = body[index : index + 4]
        decoded += base64.b64decode(chunk)
    return decoded


def _grpc_web_frames(body: bytes) -> list[tuple[int, bytes]]:
    frames, offset = [], 0
    while offset < len(body):
        flag, length = body[offset], struct.unpack(">I", body[offset + 1 : offset + 5])[0]
        frames.append((flag, body[offset + 5 : offset + 5 + length]))
        offset += 5 + length
    return frames


@pytest.mark.parametrize("mode", ["binary", "text"])
def test_grpc_web_unary_and_server_stream(stack: Stack, http: httpx.Client, images: ImageServer, mode: str) -> None:
    allowed_origin = stack.ui_url
    email = unique_email("grpcweb")
    http.post("/v1/auth/register", json={"email": email, "password": TEST_PASSWORD})
    content_type = "application/grpc-web+proto" if mode == "binary" else "application/grpc-web-text"

    def call(method: str, message: bytes, token: str | None = None) -> tuple[list[tuple[int, bytes]], httpx.Headers]:
        body = _grpc_web_frame(message)
        headers = {"content-type": content_type, "accept": content_type, "x-grpc-web": "1", "origin": allowed_origin}
        if token:
            headers["authorization"] = f"Bearer {token}"
        response = http.post(method, content=base64.b64encode(body) if mode == "text" else body, headers=headers)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == allowed_origin
        raw = _decode_text(response.content) if mode == "text" else response.content
        return _grpc_web_frames(raw), response.headers

    frames, _ = call(
        "/pixelflow.v1.AuthService/Login",
        auth_pb2.LoginRequest(email=email, password=TEST_PASSWORD).SerializeToString(),
    )
    (flag, data), (trailer_flag, trailer) = frames
    assert flag == 0 and trailer_flag == 0x80 and b"grpc-status:0" in trailer.replace(b" ", b"")
    token = auth_pb2.LoginResponse.FromString(data).access_token

    frames, headers = call(
        "/pixelflow.v1.AuthService/Login",
        auth_pb2.LoginRequest(email=email, password="wrong-password").SerializeToString(),
    )
    # An error without messages is "trailers-only": the status arrives in the response headers.
    assert not frames and headers["grpc-status"] == "16" and "incorrect" in headers["grpc-message"]

    # A client stream of one message (what a gRPC-web client can send): CreateUpload.
    photo = image_bytes(80, 60, "PNG")
    chunk = task_pb2.CreateUploadRequest(filename="web.png", body=httpbody_pb2.HttpBody(data=photo))
    frames, _ = call("/pixelflow.v1.TaskService/CreateUpload", chunk.SerializeToString(), token)
    upload = task_pb2.Upload.FromString(frames[0][1])
    assert upload.size_bytes == len(photo) and upload.content_type == "image/png"

    create = task_pb2.CreateTaskRequest(upload_id=upload.id)
    frames, _ = call("/pixelflow.v1.TaskService/CreateTask", create.SerializeToString(), token)
    task = task_pb2.Task.FromString(frames[0][1])
    frames, _ = call(
        "/pixelflow.v1.TaskService/WatchTask", task_pb2.WatchTaskRequest(task_id=task.id).SerializeToString(), token
    )
    statuses = [task_pb2.WatchTaskResponse.FromString(data).task.status for flag, data in frames if flag == 0]
    assert statuses[-1] == task_pb2.TASK_STATUS_COMPLETED
    assert frames[-1][0] == 0x80 and b"grpc-status:0" in frames[-1][1].replace(b" ", b"")


def test_cors_preflight_allows_only_the_configured_origins(stack: Stack, http: httpx.Client) -> None:
    def preflight(origin: str) -> httpx.Response:
        return http.options(
            "/v1/tasks",
            headers={
                "origin": origin,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type",
            },
        )

    allowed = preflight(stack.ui_url)
    assert allowed.headers.get("access-control-allow-origin") == stack.ui_url
    assert "authorization" in allowed.headers.get("access-control-allow-headers", "")
    assert "access-control-allow-origin" not in preflight("https://evil.example").headers
