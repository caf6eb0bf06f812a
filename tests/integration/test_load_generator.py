"""The load generator (bench.load) against the real stack, briefly: it offers what it is asked,
follows every task to its end, and reports the numbers; a run of its own is `make load`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from bench.load import report, run
from bench.photos import photo
from infra.stack import Stack
from tests.images import ImageServer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/load.jpg", photo("jpeg", (640, 480), 85), "image/jpeg")
    with server.running():
        yield server


def test_a_short_mixed_run_completes_every_task_it_offers(stack: Stack, images: ImageServer) -> None:
    results, elapsed = asyncio.run(
        run(
            stack.gateway_address,
            images.url("/load.jpg"),
            rate=3.0,
            duration=4.0,
            drain=60.0,
            users=2,
            watchers=1,
            url_share=0.5,
        )
    )
    summary = report(results, 3.0, 4.0, elapsed)
    assert results.offered > 0 and summary["errors"] == {}
    assert (results.completed, results.failed, results.unfinished) == (results.offered, 0, 0)
    end_to_end = summary["end_to_end"]
    assert isinstance(end_to_end, dict) and end_to_end["count"] == results.offered
    assert 0 < end_to_end["p50_ms"] <= end_to_end["p99_ms"] <= end_to_end["max_ms"]
    assert results.list_seconds, "the listers listed nothing"
