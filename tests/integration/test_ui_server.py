"""The static server of the UI and the API docs, as the local stack runs it."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from infra.stack import Stack

pytestmark = pytest.mark.integration


def test_serves_the_app_its_config_and_the_api_docs(stack: Stack) -> None:
    with httpx.Client(base_url=stack.ui_url, timeout=10) as ui:
        index = ui.get("/")
        assert index.status_code == 200 and '<div id="root">' in index.text
        assert index.headers["x-content-type-options"] == "nosniff"
        # History-API routes fall back to the app; a missing asset does not.
        assert ui.get("/tasks/0123456789abcdef0123456789abcdef").text == index.text
        assert ui.get("/assets/missing.js").status_code == 404
        config = ui.get("/config.json").json()
        assert config == {"gatewayUrl": f"http://{stack.gateway_address}", "maxUploadBytes": 26214400}
        docs = ui.get("/docs/")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        spec = ui.get("/docs/openapi.json").json()
        assert "/v1/tasks" in spec["paths"]


def test_paths_outside_the_build_are_never_served(stack: Stack) -> None:
    # Raw request lines: an HTTP client would normalise the dots away before sending.
    host, port = stack.ui_url.removeprefix("http://").split(":")
    for target in ("/../../../../etc/passwd", "/assets/../../pyproject.toml", "/%2e%2e/%2e%2e/etc/passwd"):
        with socket.create_connection((host, int(port)), timeout=5) as connection:
            connection.sendall(f"GET {target} HTTP/1.0\r\nHost: ui\r\n\r\n".encode())
            reply = b""
            while chunk := connection.recv(65536):
                reply += chunk
        head, _, body = reply.partition(b"\r\n\r\n")
        assert b"root:" not in body and b"[project]" not in body, target
        status = int(head.split()[1])
        # Either refused, or the app's index page (the SPA fallback) — never the file asked for.
        assert status == 404 or b'<div id="root">' in body, (target, status)


def test_the_docs_point_try_it_out_at_the_gateway(stack: Stack) -> None:
    spec = json.loads(httpx.get(f"{stack.ui_url}/docs/openapi.json", timeout=10).text)
    assert spec.get("host") or spec.get("servers")
