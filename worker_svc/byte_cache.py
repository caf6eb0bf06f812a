"""A least-recently-used cache of byte strings bounded by their total size (watermark images:
uploads never change under their id, so a worker keeps the ones it uses without asking again)."""

from __future__ import annotations

from collections import OrderedDict

# Watermarks are logos: a few KiB each. 32 MiB keeps hundreds; one larger than that is fetched
# each time rather than evicting everything else.
WATERMARK_CACHE_BYTES = 32 * 1024 * 1024


class BytesCache:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._entries: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0

    def get(self, key: str) -> bytes | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: bytes) -> None:
        if len(value) > self._max_bytes:
            return
        if (old := self._entries.pop(key, None)) is not None:
            self._size -= len(old)
        self._entries[key] = value
        self._size += len(value)
        while self._size > self._max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._size -= len(evicted)

    @property
    def size(self) -> int:
        return self._size

    def __contains__(self, key: str) -> bool:
        return key in self._entries
