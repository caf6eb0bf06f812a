"""Registration rules: pure logic."""

from __future__ import annotations

import pytest

from auth_svc.validation import (
    normalize_password,
    validate_display_name,
    validate_email,
    validate_password,
)
from common.errors import InvalidArgument

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Alice@Example.COM ", "alice@example.com"),
        ("ｂｏｂ@example.com", "bob@example.com"),
        # An internationalised domain typed in Unicode or in its ASCII (punycode) form: one account.
        ("ana@bücher.de", "ana@bücher.de"),
        ("ana@xn--bcher-kva.de", "ana@bücher.de"),
    ],
)
def test_emails_are_normalised(raw: str, expected: str) -> None:
    assert validate_email(raw) == expected


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "   ",
        "no-at-sign",
        "two@@example.com",
        "a b@example.com",
        "a@nodot",
        "x@" + "d" * 250 + ".com",
        "a\x00b@example.com",
        "a\x07b@example.com",
        "admin\u202e@example.com",
        "x\u2066y@example.com",
        '"quoted"@example.com',
        "a@[192.0.2.1]",
        "root@localhost",
        "a..b@example.com",
        ".a@example.com",
    ],
)
def test_bad_emails_are_refused_naming_the_field(bad: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_email(bad)
    assert caught.value.field == "email"


def test_password_length_is_counted_in_bytes_up_to_bcrypts_limit() -> None:
    assert validate_password("a" * 72) == "a" * 72
    with pytest.raises(InvalidArgument, match="at most 72 bytes"):
        validate_password("a" * 73)
    # 25 characters, 75 bytes: over the limit although short in characters.
    with pytest.raises(InvalidArgument, match="at most 72 bytes"):
        validate_password("€" * 25)


@pytest.mark.parametrize("bad", ["short", "        ", "\t" * 9, "secret\x00anything-after"])
def test_weak_passwords_are_refused(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        validate_password(bad)


def test_display_names_are_trimmed_and_bounded() -> None:
    assert validate_display_name("  Ada  ") == "Ada"
    with pytest.raises(InvalidArgument):
        validate_display_name("x" * 101)
    with pytest.raises(InvalidArgument):
        validate_display_name("bell\x07")
    for spoof in ("evil\u202etxt.exe", "\u2067admin", "a\u200fb"):
        with pytest.raises(InvalidArgument, match="text-direction"):
            validate_display_name(spoof)


def test_passwords_are_compared_in_nfc() -> None:
    assert normalize_password("cafe\u0301") == normalize_password("caf\u00e9") == "caf\u00e9"
