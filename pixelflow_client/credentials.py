"""The saved session of `pixelflow login`: which server, who, and the tokens, in the user's
config directory (`PIXELFLOW_CONFIG_DIR` overrides it), readable by the user alone.

The refresh token is rotated at every refresh, so two processes refreshing with the same one
would race: refreshes happen under an exclusive lock on a file beside the credentials, and a
process re-reads them under the lock (another may have refreshed meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import typer

_FILE = "credentials.json"
_LOCK = "credentials.lock"


@dataclass(frozen=True)
class SavedSession:
    server: str
    email: str
    refresh_token: str
    access_token: str = ""
    # Unix time the access token stops being accepted.
    access_expires_at: float = 0.0


class CredentialStore:
    def __init__(self, directory: Path | None = None) -> None:
        configured = os.environ.get("PIXELFLOW_CONFIG_DIR")
        self.directory = directory or (Path(configured) if configured else Path(typer.get_app_dir("pixelflow")))

    @property
    def path(self) -> Path:
        return self.directory / _FILE

    def load(self) -> SavedSession | None:
        try:
            raw = json.loads(self.path.read_text())
            return SavedSession(**{key: raw[key] for key in SavedSession.__dataclass_fields__ if key in raw})
        except FileNotFoundError:
            return None
        except (ValueError, TypeError, KeyError):
            # A damaged or foreign file is no session; `pixelflow login` writes a good one.
            return None

    def save(self, session: SavedSession) -> None:
        """Written whole or not at all (a temporary file renamed over the old), mode 0600 from
        the first byte: no moment where another user could read the tokens."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=self.directory, prefix=".credentials-")
        try:
            with os.fdopen(descriptor, "w") as file:
                json.dump(asdict(session), file)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Exclusive across processes (flock), held while a refresh reads, calls and writes; the
        wait for it runs in a thread so the event loop goes on meanwhile."""
        lock = await asyncio.to_thread(self._acquire)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
            lock.close()

    def _acquire(self) -> TextIO:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = open(self.directory / _LOCK, "a")  # noqa: SIM115 - held open until `locked` ends
        fcntl.flock(lock, fcntl.LOCK_EX)
        return lock
