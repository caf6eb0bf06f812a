"""Small test images made in code, and a local HTTP server that serves them."""

from __future__ import annotations

import io
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image


def encoded(image: Image.Image, fmt: str = "PNG", **options: Any) -> bytes:
    """`image` written as `fmt` (Pillow's name) with Pillow's save `options`."""
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def image_bytes(
    width: int = 64, height: int = 48, fmt: str = "PNG", colour: tuple[int, int, int] = (200, 40, 40)
) -> bytes:
    image = Image.new("RGB", (width, height), colour)
    # A gradient so that resizes and crops have something to work on.
    for x in range(width):
        image.putpixel((x, height // 2), (x * 255 // max(1, width - 1), 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def bomb_png(width: int = 120_000, height: int = 100_000) -> bytes:
    """A valid PNG signature and IHDR that claim 12 gigapixels, and almost no data."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 64))
        + chunk(b"IEND", b"")
    )


Route = Callable[[BaseHTTPRequestHandler], None]


def one_pixel_gif_frames(count: int) -> bytes:
    """A GIF of `count` one-pixel frames, 15 bytes each: the shape of a frame-count bomb."""
    head = b"GIF89a" + struct.pack("<HHBBB", 1, 1, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, 1, 1, 0) + b"\x02\x02\x44\x01\x00"
    return head + frame * count + b"\x3b"


def tiny_tiff_pages(count: int, order: str = "<", *, loop: bool = False) -> bytes:
    """A classic TIFF of `count` one-pixel grey pages; with `loop`, the last page points at the first."""
    entries = 8
    ifd_size = 2 + entries * 12 + 4
    pixels_at = 8 + count * ifd_size
    out = bytearray((b"II*\x00" if order == "<" else b"MM\x00*") + struct.pack(f"{order}I", 8))
    for index in range(count):
        following = 8 + (index + 1) * ifd_size if index < count - 1 else (8 if loop else 0)
        tags = [(256, 1), (257, 1), (258, 8), (259, 1), (262, 1), (273, pixels_at), (278, 1), (279, 1)]
        out += struct.pack(f"{order}H", entries)
        for tag, value in tags:
            out += struct.pack(f"{order}HHII", tag, 4, 1, value)
        out += struct.pack(f"{order}I", following)
    return bytes(out + b"\x80")


class ImageServer:
    """Serves fixed routes on 127.0.0.1; counts requests per path."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.hits: dict[str, int] = {}
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                route = server.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                route(self)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._http.server_address[1]

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def serve_bytes(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/octet-stream",
        delay: float = 0,
        headers: dict[str, str] | None = None,
    ) -> None:
        def route(handler: BaseHTTPRequestHandler) -> None:
            if delay:
                time.sleep(delay)
            handler.send_response(200)
            handler.send_header("Content-Type", content_type)
            handler.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)

        self.routes[path] = route

    def serve_status(self, path: str, status: int) -> None:
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = route

    def redirect(self, path: str, location: str) -> None:
        def route(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(302)
            handler.send_header("Location", location)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        self.routes[path] = route

    @contextmanager
    def running(self) -> Iterator[ImageServer]:
        thread = threading.Thread(target=self._http.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._http.shutdown()
            self._http.server_close()
