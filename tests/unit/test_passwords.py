"""bcrypt wrapper: the 72-byte limit and the unknown-user path."""

from __future__ import annotations

import pytest

from auth_svc.passwords import PasswordHasher

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def hasher() -> PasswordHasher:
    return PasswordHasher(rounds=4, concurrency=2)


async def test_hash_and_verify(hasher: PasswordHasher) -> None:
    stored = await hasher.hash("correct horse")
    assert stored.startswith("$2b$04$")
    assert await hasher.verify("correct horse", stored)
    assert not await hasher.verify("correct horsE", stored)


async def test_over_long_password_never_matches_and_never_raises(hasher: PasswordHasher) -> None:
    # bcrypt only reads 72 bytes: a longer password sharing them must not log in.
    first_72 = "p" * 72
    stored = await hasher.hash(first_72)
    assert await hasher.verify(first_72, stored)
    assert not await hasher.verify(first_72 + "anything", stored)
    with pytest.raises(ValueError, match="limit"):
        await hasher.hash(first_72 + "x")


async def test_unknown_user_is_checked_against_a_dummy_hash(hasher: PasswordHasher) -> None:
    assert not await hasher.verify("whatever", None)
