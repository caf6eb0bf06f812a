"""Counting a source's frames without walking all of them.

Pillow's `n_frames` visits every frame: a 1.5 MB GIF of 100 000 one-pixel frames takes a second,
and a 10 MB TIFF of 100 000 tiny pages takes four minutes (each new page is looked up in the list
of pages seen so far: quadratic). A source may only have `limit` frames, so counting stops at
`limit + 1`: the cost is bounded by the limit, not by what the file claims. GIF and TIFF are
walked here, reading only the structure (block lengths, page offsets); WebP, PNG (APNG) and AVIF
declare their frame count in one header field that Pillow reads when it opens the file.
"""

from __future__ import annotations

import struct

from PIL import Image

from worker_svc.imaging.sniff import SourceFormat

_GIF_EXTENSION, _GIF_IMAGE, _GIF_TRAILER = 0x21, 0x2C, 0x3B


def count_frames(data: bytes, fmt: SourceFormat, image: Image.Image, limit: int) -> int:
    """The number of frames, or `limit + 1` when there are more than `limit`."""
    if fmt is SourceFormat.GIF:
        return _gif_frames(data, limit)
    if fmt is SourceFormat.TIFF:
        return _tiff_pages(data, limit)
    return min(int(getattr(image, "n_frames", 1)), limit + 1)


def _gif_frames(data: bytes, limit: int) -> int:
    """Image descriptors up to the trailer (or to where the data stops making sense)."""
    if len(data) < 13:
        return 1
    position = 13 + _colour_table_bytes(data[10])
    frames = 0
    while position < len(data) and frames <= limit:
        block = data[position]
        if block == _GIF_IMAGE:
            if position + 10 > len(data):
                break
            frames += 1
            position += 10 + _colour_table_bytes(data[position + 9]) + 1  # descriptor, table, LZW size
            position = _skip_sub_blocks(data, position)
        elif block == _GIF_EXTENSION:
            position = _skip_sub_blocks(data, position + 2)
        else:  # the trailer, or bytes that are not a GIF block: Pillow stops there too
            break
    return max(1, min(frames, limit + 1))


def _colour_table_bytes(packed: int) -> int:
    return 3 * 2 ** ((packed & 0x07) + 1) if packed & 0x80 else 0


def _skip_sub_blocks(data: bytes, position: int) -> int:
    """Past a chain of length-prefixed sub-blocks and its zero terminator. Each block is at most
    255 bytes, so this loop runs at most len(data) / 256 times however the file is built."""
    while position < len(data):
        size = data[position]
        position += 1 + size
        if size == 0:
            break
    return position


def _tiff_pages(data: bytes, limit: int) -> int:
    """IFDs along the chain of next-IFD offsets (classic TIFF and BigTIFF), stopping at a loop."""
    if len(data) < 8 or data[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if data[:2] == b"II" else ">"
    (version,) = struct.unpack_from(f"{order}H", data, 2)
    if version == 43:  # BigTIFF: 8-byte counts and offsets, 20-byte entries
        if len(data) < 16:
            return 1
        count_format, entry_size, offset_format = "Q", 20, "Q"
        (offset,) = struct.unpack_from(f"{order}Q", data, 8)
    else:
        count_format, entry_size, offset_format = "H", 12, "I"
        (offset,) = struct.unpack_from(f"{order}I", data, 4)
    count_size, offset_size = struct.calcsize(count_format), struct.calcsize(offset_format)
    seen: set[int] = set()
    pages = 0
    while offset and offset not in seen and pages <= limit:
        if offset + count_size > len(data):
            break
        seen.add(offset)
        pages += 1
        (entries,) = struct.unpack_from(f"{order}{count_format}", data, offset)
        next_at = offset + count_size + entries * entry_size
        if next_at + offset_size > len(data):
            break
        (offset,) = struct.unpack_from(f"{order}{offset_format}", data, next_at)
    return max(1, min(pages, limit + 1))
