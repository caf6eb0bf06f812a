"""Hostile sources against the real worker: compression bombs answered despite
`Accept-Encoding: identity`, single and stacked. The task fails with SOURCE_TOO_LARGE and the
worker's main process stays within its memory budget, read from /proc."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from pixelflow.v1 import task_pb2

from infra.stack import Stack
from tests.conftest import run_task_as_new_user
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration

FETCH_LIMIT = 25 * 1024 * 1024  # PIXELFLOW_FETCH_MAX_BYTES' default, which the test stack uses
# The decoded bytes kept (at most the limit), their join into one object, and small buffers.
MAIN_PROCESS_BUDGET = 2 * FETCH_LIMIT + 32 * 1024 * 1024


def _zeros_gzip(megabytes: int) -> bytes:
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(squeeze.compress(block) for _ in range(megabytes)) + squeeze.flush()


@pytest.fixture(scope="module")
def bombs() -> Iterator[ImageServer]:
    server = ImageServer()
    one_gib = _zeros_gzip(1024)  # 1 GiB of zeros in ~1 MiB
    server.serve_bytes("/bomb.png", one_gib, "image/png", headers={"Content-Encoding": "gzip"})
    # 1 GiB twice over: gzip of gzip, a few KiB on the wire.
    server.serve_bytes("/stacked.png", gzip.compress(one_gib), "image/png", headers={"Content-Encoding": "gzip, gzip"})
    server.serve_bytes(
        "/honest.png", gzip.compress(image_bytes(60, 40)), "image/png", headers={"Content-Encoding": "gzip"}
    )
    server.serve_bytes("/brotli.png", b"\x0b\x02\x80hi\x03", "image/png", headers={"Content-Encoding": "br"})
    with server.running():
        yield server


def _worker_pid(stack: Stack) -> int:
    pid = stack.services["worker_svc"].pid
    assert pid is not None
    return pid


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def _run(stack: Stack, url: str) -> task_pb2.Task:
    return run_task_as_new_user(stack, task_pb2.CreateTaskRequest(source_url=url))


@pytest.mark.parametrize("path", ["/bomb.png", "/stacked.png"])
def test_a_compression_bomb_fails_the_task_within_the_memory_budget(
    stack: Stack, bombs: ImageServer, path: str
) -> None:
    pid = _worker_pid(stack)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    baseline = _status_kib(pid, "VmHWM") * 1024
    final = _run(stack, bombs.url(path))
    assert final.status == task_pb2.TASK_STATUS_FAILED and final.error.code == "SOURCE_TOO_LARGE", final
    grown = _status_kib(pid, "VmHWM") * 1024 - baseline
    assert grown < MAIN_PROCESS_BUDGET, f"the worker's main process grew by {grown / 2**20:.0f} MiB"


def test_an_honest_gzip_answer_is_decoded(stack: Stack, bombs: ImageServer) -> None:
    final = _run(stack, bombs.url("/honest.png"))
    assert final.status == task_pb2.TASK_STATUS_COMPLETED and (final.result.width, final.result.height) == (60, 40)


def test_an_encoding_the_worker_does_not_decode_is_refused_clearly(stack: Stack, bombs: ImageServer) -> None:
    final = _run(stack, bombs.url("/brotli.png"))
    assert final.status == task_pb2.TASK_STATUS_FAILED and final.error.code == "SOURCE_HTTP_ERROR"
    assert "Content-Encoding br" in final.error.message
