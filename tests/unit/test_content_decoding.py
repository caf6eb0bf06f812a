"""Content-Encoding decoded within a byte budget, with real compression bombs. Pure logic."""

from __future__ import annotations

import gzip
import tracemalloc
import zlib

import pytest

from tasks.failures import FailureCode
from worker_svc.sources.decoding import MAX_LAYERS, BoundedDecoder, encodings
from worker_svc.sources.errors import SourceError

pytestmark = pytest.mark.unit

LIMIT = 1024 * 1024
IMAGE = bytes(range(256)) * 1000


def _zeros_gzip(megabytes: int) -> bytes:
    """gzip of `megabytes` MiB of zeros, built in pieces (the bomb, ~1000:1)."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1024 * 1024)
    return b"".join(squeeze.compress(block) for _ in range(megabytes)) + squeeze.flush()


def _decode(body: bytes, header: str, *, limit: int = LIMIT, chunk: int = 16 * 1024) -> bytes:
    decoder = BoundedDecoder(encodings(header), limit)
    return b"".join(
        piece for start in range(0, len(body), chunk) for piece in decoder.feed(body[start : start + chunk])
    )


def test_the_header_lists_encodings_in_the_order_applied() -> None:
    assert encodings("gzip, Deflate ,identity") == ["gzip", "deflate"]
    assert encodings(None) == [] and encodings("identity") == []


@pytest.mark.parametrize(
    ("body", "header"),
    [
        (IMAGE, ""),
        (gzip.compress(IMAGE), "gzip"),
        (gzip.compress(IMAGE), "x-gzip"),
        (zlib.compress(IMAGE), "deflate"),
        (zlib.compress(IMAGE)[2:-4], "deflate"),  # raw deflate, as some servers send it
        (gzip.compress(IMAGE[:1000]) + gzip.compress(IMAGE[1000:]), "gzip"),  # two members
        (zlib.compress(gzip.compress(IMAGE)), "gzip, deflate"),
    ],
)
def test_what_servers_send_decodes_to_the_image(body: bytes, header: str) -> None:
    assert _decode(body, header) == IMAGE


def _refused_with_peak(body: bytes, header: str) -> tuple[SourceError, int]:
    """The error decoding `body` ends in, and the most memory Python held meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(SourceError) as caught:
            _decode(body, header)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return caught.value, peak


def test_a_gzip_bomb_stops_at_the_limit_with_bounded_memory() -> None:
    error, peak = _refused_with_peak(_zeros_gzip(200), "gzip")  # 200 MiB of zeros in ~200 KiB
    assert error.code is FailureCode.SOURCE_TOO_LARGE
    assert peak < 3 * LIMIT, peak  # the decoded bytes kept so far, not the bomb's 200 MiB


def test_stacked_bombs_stop_at_the_limit_in_every_layer() -> None:
    bomb = gzip.compress(gzip.compress(_zeros_gzip(64)))  # gzip, gzip, gzip: 64 MiB from a few hundred bytes
    assert len(bomb) < 4096
    error, peak = _refused_with_peak(bomb, "gzip, gzip, gzip")
    assert error.code is FailureCode.SOURCE_TOO_LARGE and peak < 3 * LIMIT


def test_empty_deflate_blocks_cannot_make_a_layer_work_forever() -> None:
    """A stream of empty stored blocks inflates to nothing; wrapped in gzip it is tiny. The
    outer layer's output is bounded too, so the inner layer's work is."""
    empty_blocks = b"\x00\x00\x00\xff\xff" * (LIMIT // 5 + 1000)  # > LIMIT bytes of no output
    bomb = gzip.compress(empty_blocks)
    with pytest.raises(SourceError) as caught:
        _decode(bomb, "deflate, gzip")
    assert caught.value.code is FailureCode.SOURCE_TOO_LARGE


def test_the_raw_body_is_bounded_too() -> None:
    with pytest.raises(SourceError) as caught:
        _decode(bytes(LIMIT + 1), "")
    assert caught.value.code is FailureCode.SOURCE_TOO_LARGE


@pytest.mark.parametrize("header", ["br", "zstd", "compress", "gzip, br", "x-unknown"])
def test_other_encodings_are_refused_with_a_clear_error(header: str) -> None:
    with pytest.raises(SourceError) as caught:
        BoundedDecoder(encodings(header), LIMIT)
    assert caught.value.code is FailureCode.SOURCE_HTTP_ERROR and "not accepted" in caught.value.message


def test_more_than_the_layer_cap_is_refused() -> None:
    with pytest.raises(SourceError) as caught:
        BoundedDecoder(["gzip"] * (MAX_LAYERS + 1), LIMIT)
    assert "at most" in caught.value.message


def test_a_corrupt_encoding_is_an_http_error() -> None:
    with pytest.raises(SourceError) as caught:
        _decode(b"\x1f\x8b\x08\x00garbage-that-is-not-deflate" * 10, "gzip")
    assert caught.value.code is FailureCode.SOURCE_HTTP_ERROR and "corrupt" in caught.value.message
