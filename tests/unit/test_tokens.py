"""Access-token verification against forged and malformed tokens: pure logic."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from typing import Any, cast

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from auth_svc.keys import SigningKey
from auth_svc.tokens import AccessTokenIssuer
from common.errors import Unauthenticated
from common.tokens import bearer_token, key_id, verify_access_token

pytestmark = pytest.mark.unit

ISS, AUD = "pixelflow-auth", "pixelflow"


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    private = Ed25519PrivateKey.generate()
    return SigningKey(private_key=private, kid=key_id(private.public_key()))


def _verify(token: str, key: SigningKey) -> Any:
    return verify_access_token(token, {key.kid: key.private_key.public_key()}, issuer=ISS, audience=AUD)


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISS,
        "aud": AUD,
        "sub": str(uuid.uuid4()),
        "email": "a@example.com",
        "sid": str(uuid.uuid4()),
        "jti": uuid.uuid4().hex,
        "typ": "access",
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def _sign(key: SigningKey, claims: dict[str, Any], kid: str | None = None) -> str:
    return jwt.encode(claims, key.private_key, algorithm="EdDSA", headers={"kid": kid or key.kid})


def test_issued_tokens_verify(signing_key: SigningKey) -> None:
    issuer = AccessTokenIssuer(signing_key, issuer=ISS, audience=AUD, ttl=timedelta(minutes=5))
    user, session = uuid.uuid4(), uuid.uuid4()
    issued = issuer.issue(user_id=user, email="a@example.com", session_id=session, admin=False)
    claims = _verify(issued.token, signing_key)
    assert (claims.user_id, claims.session_id, claims.email) == (str(user), str(session), "a@example.com")
    assert claims.expires_at == issued.expires_at
    assert not claims.admin and "adm" not in jwt.decode(issued.token, options={"verify_signature": False})


def test_the_admin_flag_travels_in_the_token_and_only_true_counts(signing_key: SigningKey) -> None:
    issuer = AccessTokenIssuer(signing_key, issuer=ISS, audience=AUD, ttl=timedelta(minutes=5))
    issued = issuer.issue(user_id=uuid.uuid4(), email="a@example.com", session_id=uuid.uuid4(), admin=True)
    assert _verify(issued.token, signing_key).admin
    claims = jwt.decode(issued.token, options={"verify_signature": False})
    for not_true in ("true", 1, "yes"):
        assert not _verify(_sign(signing_key, {**claims, "adm": not_true}), signing_key).admin


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": None},
        {"iat": None},
        {"jti": None},
        {"sub": None},
        {"exp": int(time.time()) - 3600},
        {"aud": "someone-else"},
        {"iss": "someone-else"},
        {"typ": "refresh"},
        {"typ": None},
        {"sid": None},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()),
)
def test_tokens_missing_or_wrong_claims_are_refused(signing_key: SigningKey, overrides: dict[str, Any]) -> None:
    with pytest.raises(Unauthenticated):
        _verify(_sign(signing_key, _claims(**overrides)), signing_key)


def test_alg_none_is_refused(signing_key: SigningKey) -> None:
    token = jwt.encode(_claims(), cast(Any, None), algorithm="none", headers={"kid": signing_key.kid})
    with pytest.raises(Unauthenticated):
        _verify(token, signing_key)


def test_hmac_signed_with_the_public_key_is_refused(signing_key: SigningKey) -> None:
    # The classic algorithm-confusion attack: HS256 keyed with the (public) verification key.
    public = signing_key.private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    token = jwt.encode(_claims(), public, algorithm="HS256", headers={"kid": signing_key.kid})
    with pytest.raises(Unauthenticated):
        _verify(token, signing_key)


def test_another_key_under_our_kid_is_refused(signing_key: SigningKey) -> None:
    forged = SigningKey(private_key=Ed25519PrivateKey.generate(), kid=signing_key.kid)
    with pytest.raises(Unauthenticated):
        _verify(_sign(forged, _claims()), signing_key)


def test_unknown_kid_is_refused(signing_key: SigningKey) -> None:
    with pytest.raises(Unauthenticated):
        _verify(_sign(signing_key, _claims(), kid="not-a-key-we-know"), signing_key)


@pytest.mark.parametrize("garbage", ["", "abc", "a.b.c", "x" * 5000, "eyJhbGciOiJFZERTQSJ9..", "\x00\x01"])
def test_garbage_is_refused(signing_key: SigningKey, garbage: str) -> None:
    with pytest.raises(Unauthenticated):
        _verify(garbage, signing_key)


def test_bearer_token_reads_only_the_bearer_scheme() -> None:
    assert bearer_token([("authorization", "Bearer abc")]) == "abc"
    assert bearer_token([("authorization", "bearer  abc ")]) == "abc"
    assert bearer_token([("authorization", "Basic abc")]) is None
    assert bearer_token([("authorization", "Bearer ")]) is None
    assert bearer_token([]) is None
