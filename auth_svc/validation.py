"""Rules for what a user may register with. Violations are INVALID_ARGUMENT naming the field.

These stay here rather than in auth.proto's buf.validate rules (where every other request rule
lives, common.validation) because each applies to the *normalized* value: an email is NFKC-folded,
trimmed and lower-cased and then checked by email-validator (RFC 5321/6531 with IDNA, which no
protovalidate rule reproduces); a password's length counts after NFC (é typed as e + accent is
one character) and its 72-byte bcrypt limit in the UTF-8 of that form; a display name after
NFKC and trimming. A rule on the raw field would disagree with these at the edges.
"""

from __future__ import annotations

import unicodedata

import email_validator

from auth_svc.passwords import BCRYPT_MAX_BYTES
from common.errors import InvalidArgument

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_CHARS = 8
MAX_DISPLAY_NAME_CHARS = 100


def normalize_email(email: str) -> str:
    """The form an email is looked up in before validation: NFKC, trimmed, lower case (addresses
    are told apart case-insensitively, as people expect)."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def validate_email(email: str) -> str:
    """The normalized email, or INVALID_ARGUMENT: at Register and at Login alike (an address
    that could never have been registered is refused before it reaches the database, which
    would choke on a NUL). The syntax is email-validator's (RFC 5321/6531 with internationalised
    domains; no quoted local parts, IP literals or special-use domains such as localhost; no
    DNS lookup)."""
    normalized = normalize_email(email)
    if not normalized:
        raise InvalidArgument("email is required", field="email", rule="email.required")
    if len(normalized) > MAX_EMAIL_LENGTH or _has_invisible_controls(normalized):
        raise InvalidArgument(_EMAIL_RULE, field="email", rule="email.syntax")
    try:
        checked = email_validator.validate_email(normalized, check_deliverability=False)
    except email_validator.EmailNotValidError as exc:
        raise InvalidArgument(f"{_EMAIL_RULE}: {exc}", field="email", rule="email.syntax") from exc
    return checked.normalized.lower()


_EMAIL_RULE = "email must look like name@example.com (at most 254 characters, no control characters)"


def normalize_password(password: str) -> str:
    """NFC: the same password typed on two keyboards (é as one code point or e + accent) is the
    same password."""
    return unicodedata.normalize("NFC", password)


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidArgument(
            f"password must have at least {MIN_PASSWORD_CHARS} characters", field="password", rule="password.min_chars"
        )
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise InvalidArgument(
            f"password must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8 (bcrypt ignores anything longer)",
            field="password",
            rule="password.max_bytes",
        )
    if password.strip() == "":
        raise InvalidArgument("password must not be only white space", field="password", rule="password.blank")
    if "\x00" in password:
        # bcrypt implementations stop at a NUL: everything after it would not count.
        raise InvalidArgument("password must not contain NUL characters", field="password", rule="password.nul")
    return password


def validate_display_name(display_name: str) -> str:
    cleaned = unicodedata.normalize("NFKC", display_name).strip()
    if len(cleaned) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidArgument(
            f"display_name must be at most {MAX_DISPLAY_NAME_CHARS} characters",
            field="display_name",
            rule="display_name.max_chars",
        )
    if _has_invisible_controls(cleaned):
        raise InvalidArgument(
            "display_name must not contain control or text-direction characters",
            field="display_name",
            rule="display_name.printable",
        )
    return cleaned


# Characters that reorder or hide text (bidi embeddings, overrides and isolates, the marks):
# a name like "evil\u202etxt.exe" displays as something else.
_BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def _has_invisible_controls(text: str) -> bool:
    return any(unicodedata.category(ch) == "Cc" or ch in _BIDI_CONTROLS for ch in text)
