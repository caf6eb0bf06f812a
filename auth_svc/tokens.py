"""Issuing tokens: signed JWT access tokens and opaque refresh tokens."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from auth_svc.keys import SigningKey
from common.tokens import ACCESS_TOKEN_TYPE, ALGORITHM


@dataclass(frozen=True)
class IssuedAccessToken:
    token: str
    expires_at: datetime


def new_refresh_token() -> tuple[str, str]:
    """A refresh token and the hash under which it is stored."""
    token = secrets.token_urlsafe(32)
    return token, hash_refresh_token(token)


def hash_refresh_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class AccessTokenIssuer:
    def __init__(self, key: SigningKey, *, issuer: str, audience: str, ttl: timedelta) -> None:
        self._key = key
        self._issuer = issuer
        self._audience = audience
        self.ttl = ttl

    def issue(self, *, user_id: uuid.UUID, email: str, session_id: uuid.UUID, admin: bool) -> IssuedAccessToken:
        now = datetime.now(tz=UTC)
        expires_at = now + self.ttl
        claims = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": str(user_id),
            "email": email,
            "sid": str(session_id),
            "jti": uuid.uuid4().hex,
            "typ": ACCESS_TOKEN_TYPE,
            "iat": int(now.timestamp()),
            "nbf": int(now.timestamp()),
            "exp": int(expires_at.timestamp()),
        }
        if admin:
            claims["adm"] = True
        token = jwt.encode(
            claims, self._key.private_key, algorithm=ALGORITHM, headers={"kid": self._key.kid, "typ": "at+jwt"}
        )
        return IssuedAccessToken(token=token, expires_at=expires_at.replace(microsecond=0))
