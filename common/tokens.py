"""Access-token verification, shared by auth_svc and every service that verifies locally.

Access tokens are JWTs signed with Ed25519 (alg EdDSA, pinned: a token naming any other
algorithm, "none" included, is refused before its signature is looked at). The `kid` header
picks the key, so keys can be rotated by publishing the new one beside the old.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from common.errors import Unauthenticated

ALGORITHM = "EdDSA"
ACCESS_TOKEN_TYPE = "access"  # noqa: S105 - a claim value, not a secret
REQUIRED_CLAIMS = ("exp", "iat", "iss", "aud", "sub", "jti")
# Clock skew tolerated between the issuing and the verifying machine.
LEEWAY_SECONDS = 5
# Far longer than any token we issue; longer input is refused without parsing.
MAX_TOKEN_LENGTH = 4096

# One message for every rejection: which check failed is logged, not told to the caller.
INVALID_TOKEN_MESSAGE = "the access token is invalid or expired; log in again"  # noqa: S105


@dataclass(frozen=True, slots=True)
class AccessClaims:
    user_id: str
    email: str
    session_id: str
    token_id: str
    expires_at: datetime
    # The user may call AdminService (the "adm" claim; absent for everyone else).
    admin: bool = False


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    """RFC 7638 JWK thumbprint: stable for a key, so every replica derives the same kid."""
    canonical = f'{{"crv":"Ed25519","kty":"OKP","x":"{b64url(public_key_bytes(key))}"}}'
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def bearer_token(metadata: object) -> str | None:
    """The token of an `authorization: Bearer <token>` entry in gRPC metadata, if any."""
    for key, value in metadata or ():  # type: ignore[attr-defined]
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def verify_access_token(
    token: str,
    keys: Mapping[str, Ed25519PublicKey],
    *,
    issuer: str,
    audience: str,
) -> AccessClaims:
    """Checks signature, algorithm, kid, type and every required claim; raises Unauthenticated."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated(INVALID_TOKEN_MESSAGE)
    try:
        header = jwt.get_unverified_header(token)
        key = keys.get(str(header.get("kid", "")))
        if header.get("alg") != ALGORITHM or key is None:
            raise Unauthenticated(INVALID_TOKEN_MESSAGE)
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=audience,
            issuer=issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": list(REQUIRED_CLAIMS)},
        )
    except jwt.PyJWTError as exc:
        raise Unauthenticated(INVALID_TOKEN_MESSAGE) from exc
    if claims.get("typ") != ACCESS_TOKEN_TYPE:
        raise Unauthenticated(INVALID_TOKEN_MESSAGE)
    fields = (claims.get("sub"), claims.get("email"), claims.get("sid"), claims.get("jti"))
    if not all(isinstance(field, str) and field for field in fields):
        raise Unauthenticated(INVALID_TOKEN_MESSAGE)
    return AccessClaims(
        user_id=claims["sub"],
        email=claims["email"],
        session_id=claims["sid"],
        token_id=claims["jti"],
        expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=UTC),
        admin=claims.get("adm") is True,
    )
