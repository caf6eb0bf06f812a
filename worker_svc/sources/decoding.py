"""Content-Encoding, decoded within a byte budget whatever the server stacks.

The fetcher asks for `Accept-Encoding: identity`, but a server may answer gzip anyway, or
several encodings stacked. A decoder that inflates each network chunk whole lets a few KiB
become gigabytes in the worker's main process before any size check runs (gzip of zeros is
~1000:1, and gzip of gzip multiplies the ratios). Here every layer inflates at most
PIECE_BYTES per call and no layer may produce more than `max_bytes` in all, so memory stays
within max_bytes plus a few small buffers, and the work within `layers × max_bytes`.

gzip (`x-gzip`) and deflate (zlib-wrapped, or raw as some servers send it) are decoded;
anything else (br, zstd, compress) is refused with a clear error rather than trusted.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

from tasks.failures import FailureCode
from worker_svc.sources.errors import SourceError, too_large

PIECE_BYTES = 64 * 1024
MAX_LAYERS = 3
_GZIP_WBITS = 16 + zlib.MAX_WBITS
_SUPPORTED = {"gzip": _GZIP_WBITS, "x-gzip": _GZIP_WBITS, "deflate": zlib.MAX_WBITS}


def encodings(header: str | None) -> list[str]:
    """The encodings of a Content-Encoding header in the order they were applied."""
    found = [item.strip().lower() for item in (header or "").split(",")]
    return [item for item in found if item and item != "identity"]


class _Layer:
    def __init__(self, name: str, max_bytes: int) -> None:
        self.name = name
        self._wbits = _SUPPORTED[name]
        self._inflate = zlib.decompressobj(self._wbits)
        self._max_bytes = max_bytes
        self._produced = 0
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data:
            try:
                piece = self._inflate.decompress(data, PIECE_BYTES)
            except zlib.error as exc:
                if self.name == "deflate" and not self._started:
                    # Raw deflate (no zlib header), which some servers send as "deflate".
                    self._wbits = -zlib.MAX_WBITS
                    self._inflate = zlib.decompressobj(self._wbits)
                    self._started = True
                    continue
                raise SourceError(
                    FailureCode.SOURCE_HTTP_ERROR, f"the source's {self.name} encoding is corrupt ({exc})"
                ) from None
            self._started = True
            data = self._inflate.unconsumed_tail
            if self._inflate.eof and self._inflate.unused_data:
                data = self._inflate.unused_data + data  # another gzip member follows
                self._inflate = zlib.decompressobj(self._wbits)
            if piece:
                self._produced += len(piece)
                if self._produced > self._max_bytes:
                    raise too_large(self._max_bytes)
                yield piece


class BoundedDecoder:
    """Decodes a body encoded with `applied` (in the order applied), within `max_bytes`."""

    def __init__(self, applied: list[str], max_bytes: int) -> None:
        unsupported = [name for name in applied if name not in _SUPPORTED]
        if unsupported:
            raise SourceError(
                FailureCode.SOURCE_HTTP_ERROR,
                f"the source answered with Content-Encoding {', '.join(unsupported)}, which is not "
                "accepted (identity was asked for; gzip and deflate are decoded)",
            )
        if len(applied) > MAX_LAYERS:
            raise SourceError(
                FailureCode.SOURCE_HTTP_ERROR,
                f"the source stacked {len(applied)} content encodings; at most {MAX_LAYERS} are decoded",
            )
        # The last encoding applied is the first to undo.
        self._layers = [_Layer(name, max_bytes) for name in reversed(applied)]
        self._max_bytes = max_bytes
        self._raw = 0

    def feed(self, chunk: bytes) -> Iterator[bytes]:
        self._raw += len(chunk)
        if self._raw > self._max_bytes:
            raise too_large(self._max_bytes)
        yield from self._through(chunk, 0)

    def _through(self, data: bytes, depth: int) -> Iterator[bytes]:
        if depth == len(self._layers):
            yield data
            return
        for piece in self._layers[depth].feed(data):
            yield from self._through(piece, depth + 1)
