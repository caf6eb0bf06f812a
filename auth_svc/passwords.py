"""bcrypt hashing off the event loop, with its 72-byte limit handled explicitly."""

from __future__ import annotations

import asyncio
import secrets

import bcrypt

# bcrypt reads at most 72 bytes; bcrypt>=5 raises beyond that instead of truncating.
BCRYPT_MAX_BYTES = 72


class PasswordHasher:
    def __init__(self, *, rounds: int, concurrency: int) -> None:
        self._rounds = rounds
        self._slots = asyncio.Semaphore(concurrency)
        # Compared against when the email is unknown, so that both failures cost the same.
        self._dummy_hash = bcrypt.hashpw(secrets.token_bytes(16), bcrypt.gensalt(rounds))

    async def hash(self, password: str) -> str:
        encoded = password.encode("utf-8")
        if len(encoded) > BCRYPT_MAX_BYTES:
            raise ValueError("password longer than bcrypt's limit; validate before hashing")
        async with self._slots:
            hashed = await asyncio.to_thread(bcrypt.hashpw, encoded, bcrypt.gensalt(self._rounds))
        return hashed.decode("ascii")

    async def verify(self, password: str, password_hash: str | None) -> bool:
        """False for a wrong password, an over-long one, or no user (password_hash None)."""
        encoded = password.encode("utf-8")
        too_long = len(encoded) > BCRYPT_MAX_BYTES
        target = self._dummy_hash if password_hash is None else password_hash.encode("ascii")
        # An over-long password cannot match, but it still pays for one check: no timing signal.
        candidate = encoded[:BCRYPT_MAX_BYTES] if too_long else encoded
        async with self._slots:
            matches = await asyncio.to_thread(bcrypt.checkpw, candidate, target)
        return matches and not too_long and password_hash is not None
