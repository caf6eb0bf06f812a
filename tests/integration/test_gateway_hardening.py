"""The public listener against hostile clients, on the real Envoy: too many or malformed
headers are refused, and a client that trickles its headers (slowloris) is cut off."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.envoy_config import MAX_REQUEST_HEADERS, REQUEST_HEADERS_TIMEOUT_SECONDS
from infra.stack import Stack

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def http(stack: Stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://{stack.gateway_address}", timeout=30) as client:
        yield client


def test_too_many_headers_are_refused(http: httpx.Client) -> None:
    headers = {f"x-filler-{i}": "1" for i in range(MAX_REQUEST_HEADERS + 10)}
    assert http.get("/health", headers=headers).status_code == 431


def test_oversized_headers_are_refused(http: httpx.Client) -> None:
    assert http.get("/health", headers={"x-big": "a" * 100 * 1024}).status_code == 431


def test_header_names_with_underscores_are_refused(http: httpx.Client) -> None:
    # x_user_id could alias x-user-id in some upstream framework: not accepted at the edge.
    assert http.get("/health", headers={"x_user_id": "someone-else"}).status_code == 400
    assert http.get("/health").status_code == 200


def test_a_client_trickling_its_headers_is_cut_off(stack: Stack) -> None:
    host, port = stack.gateway_address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as conn:
        conn.sendall(b"GET /health HTTP/1.1\r\nHost: pixelflow\r\n")  # ... and never the blank line
        conn.settimeout(REQUEST_HEADERS_TIMEOUT_SECONDS + 10)
        started = time.monotonic()
        answer = b""
        try:
            while chunk := conn.recv(4096):
                answer += chunk
        except ConnectionResetError:
            pass
        waited = time.monotonic() - started
    assert waited < REQUEST_HEADERS_TIMEOUT_SECONDS + 5, waited  # closed by Envoy, not by our timeout
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:100]
