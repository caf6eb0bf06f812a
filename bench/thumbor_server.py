"""thumbor, the reference image server, running beside the engine benchmark.

Installed once from `bench/thumbor-requirements.txt` into a virtualenv of its own under
~/.cache/pixelflow (its Pillow pin clashes with the project's), started on a free port with the
file loader over a folder of sources, no storage and no result storage (every request does the
whole work, as every PixelFlow task does), pinned to the same core as the benchmark.
"""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.cache import build_once, cache_root, files_fingerprint, run_command
from infra.process import ManagedProcess, free_port

REQUIREMENTS = Path(__file__).with_name("thumbor-requirements.txt")
_CONFIG = """\
LOADER = 'thumbor.loaders.file_loader'
FILE_LOADER_ROOT_PATH = {root!r}
STORAGE = 'thumbor.storages.no_storage'
RESULT_STORAGE = 'thumbor.result_storages.no_storage'
ALLOW_UNSAFE_URL = True
MAX_AGE = 0
"""


def ensure_thumbor() -> Path:
    """The interpreter of thumbor's cached virtualenv (built on first use, about half a minute).

    The virtualenv is built in a temporary folder and renamed into place, which breaks the
    absolute paths in its scripts' first lines: thumbor is run as `python -m thumbor.server`."""
    target = cache_root() / "thumbor-venv"

    def build(tmp: Path) -> None:
        run_command([sys.executable, "-m", "venv", str(tmp)])
        run_command([str(tmp / "bin" / "pip"), "install", "-q", "--no-deps", "-r", str(REQUIREMENTS)])

    build_once("thumbor-venv", target, files_fingerprint(REQUIREMENTS), build)
    return target / "bin" / "python"


class Thumbor:
    """A running thumbor; `get(path)` fetches one result over a kept-alive connection."""

    def __init__(self, port: int) -> None:
        self._connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> bytes:
        self._connection.request("GET", f"/unsafe/{path}")
        response = self._connection.getresponse()
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"thumbor answered {response.status} to {path}: {body[:200]!r}")
        return body

    def healthy(self) -> bool:
        probe = http.client.HTTPConnection(self._connection.host, self._connection.port, timeout=2)
        try:
            probe.request("GET", "/healthcheck")
            return probe.getresponse().status == 200
        finally:
            probe.close()


@contextmanager
def running_thumbor(sources: Path, work: Path, cpu: int | None) -> Iterator[Thumbor]:
    """thumbor serving the files in `sources` (pinned to `cpu` when given)."""
    python = ensure_thumbor()
    config = work / "thumbor.conf"
    config.write_text(_CONFIG.format(root=str(sources)))
    port = free_port()
    argv = [str(python), "-m", "thumbor.server", "--port", str(port), "--conf", str(config), "--log-level", "warning"]
    if cpu is not None:
        argv = ["taskset", "--cpu-list", str(cpu), *argv]
    process = ManagedProcess("thumbor", argv, work / "thumbor.log", env={**os.environ, "PYTHONHASHSEED": "0"})
    process.start()
    try:
        client = Thumbor(port)
        process.wait_ready(client.healthy, timeout=60)
        yield client
    finally:
        process.stop()


def version() -> str:
    python = ensure_thumbor()
    result = subprocess.run(  # noqa: S603 - the interpreter of our own cached virtualenv
        [str(python), "-c", "import thumbor, PIL; print(thumbor.__version__, PIL.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    )
    thumbor_version, pillow_version = result.stdout.split()
    return f"thumbor {thumbor_version} (Pillow {pillow_version})"
