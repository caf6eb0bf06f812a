"""Serves the built browser UI (ui/dist) and the API docs (gen/docs) for the local stack.

`python -m infra.ui_server --root ui/dist --port 3000 --gateway-url http://127.0.0.1:8080
[--docs-root gen/docs] [--max-upload-bytes N]`. Single-page-app routing: unknown paths without a
file extension get index.html. `/config.json` tells the UI where the gateway is and how large an
upload the API accepts (api_svc's PIXELFLOW_MAX_UPLOAD_BYTES), so one build serves any stack.
"""

from __future__ import annotations

import json
import mimetypes
import posixpath
import signal
import sys
import threading
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated

import typer

from api_svc.config import ApiSettings

_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# api_svc's default PIXELFLOW_MAX_UPLOAD_BYTES (one fact: read from its settings).
DEFAULT_MAX_UPLOAD_BYTES: int = ApiSettings.model_fields["max_upload_bytes"].default


def config_json(gateway_url: str, max_upload_bytes: int = DEFAULT_MAX_UPLOAD_BYTES) -> bytes:
    """The body of /config.json."""
    return json.dumps({"gatewayUrl": gateway_url.rstrip("/"), "maxUploadBytes": max_upload_bytes}).encode()


def _resolve(root: Path, url_path: str) -> Path | None:
    """The file under `root` that `url_path` names, never anything outside it."""
    clean = posixpath.normpath(urllib.parse.unquote(url_path.split("?", 1)[0])).lstrip("/")
    if clean.startswith(".."):
        return None
    candidate = (root / clean).resolve()
    if root not in candidate.parents and candidate != root:
        return None
    return candidate


def make_handler(root: Path, docs_root: Path | None, config: bytes) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "pixelflow-ui"
        sys_version = ""

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/config.json":
                self._send(config, "application/json", cache=False)
                return
            if docs_root is not None and (path == "/docs" or path.startswith("/docs/")):
                self._file(docs_root, path.removeprefix("/docs") or "/", spa=False)
                return
            self._file(root, path, spa=True)

        def do_HEAD(self) -> None:
            self.do_GET()

        def _file(self, base: Path, path: str, *, spa: bool) -> None:
            target = _resolve(base, path)
            if target is not None and target.is_dir():
                target = target / "index.html"
            if (target is None or not target.is_file()) and spa and "." not in posixpath.basename(path):
                target = base / "index.html"
            if target is None or not target.is_file():
                self.send_error(HTTPStatus.NOT_FOUND)
                return
            content_type = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
            # Hashed assets never change; index.html must be re-read to pick up new builds.
            self._send(target.read_bytes(), content_type, cache="/assets/" in path)

        def _send(self, body: bytes, content_type: str, *, cache: bool) -> None:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "public, max-age=31536000, immutable" if cache else "no-cache")
            for name, value in _SECURITY_HEADERS.items():
                self.send_header(name, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            sys.stdout.write(json.dumps({"service": "ui", "request": format % args}) + "\n")

    return Handler


def main(
    root: Annotated[Path, typer.Option(help="The built UI (index.html and assets/).")],
    port: Annotated[int, typer.Option()],
    gateway_url: Annotated[str, typer.Option(help="Where the browser reaches Envoy.")],
    *,
    docs_root: Annotated[Path | None, typer.Option(help="API docs served under /docs/.")] = None,
    max_upload_bytes: Annotated[
        int, typer.Option(min=1, help="The API's upload limit (PIXELFLOW_MAX_UPLOAD_BYTES), told to the UI.")
    ] = DEFAULT_MAX_UPLOAD_BYTES,
    host: str = "127.0.0.1",
) -> None:
    root = root.resolve()
    if not (root / "index.html").is_file():
        raise typer.BadParameter(f"{root} has no index.html: build the UI first (make ui)")
    config = config_json(gateway_url, max_upload_bytes)
    server = ThreadingHTTPServer((host, port), make_handler(root, docs_root.resolve() if docs_root else None, config))
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    sys.stdout.write(json.dumps({"service": "ui", "message": "listening", "url": f"http://{host}:{port}"}) + "\n")
    sys.stdout.flush()
    try:
        server.serve_forever()
    finally:
        server.server_close()


if __name__ == "__main__":
    typer.run(main)
