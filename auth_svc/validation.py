"""Rules for what a user may register with. Violations are INVALID_ARGUMENT naming the field."""

from __future__ import annotations

import re
import unicodedata

from auth_svc.passwords import BCRYPT_MAX_BYTES
from common.errors import InvalidArgument

MAX_EMAIL_LENGTH = 254
MIN_PASSWORD_CHARS = 8
MAX_DISPLAY_NAME_CHARS = 100
# Deliberately loose (RFC 5322 is not worth enforcing): one @, no spaces, a dot in the domain.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def normalize_email(email: str) -> str:
    """The one form an email is stored and looked up in: NFKC, trimmed, lower case."""
    return unicodedata.normalize("NFKC", email).strip().lower()


def validate_email(email: str) -> str:
    normalized = normalize_email(email)
    if not normalized:
        raise InvalidArgument("email is required", field="email")
    if len(normalized) > MAX_EMAIL_LENGTH or not _EMAIL.match(normalized):
        raise InvalidArgument("email must look like name@example.com (at most 254 characters)", field="email")
    return normalized


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_CHARS:
        raise InvalidArgument(f"password must have at least {MIN_PASSWORD_CHARS} characters", field="password")
    if len(password.encode("utf-8")) > BCRYPT_MAX_BYTES:
        raise InvalidArgument(
            f"password must be at most {BCRYPT_MAX_BYTES} bytes in UTF-8 (bcrypt ignores anything longer)",
            field="password",
        )
    if password.strip() == "":
        raise InvalidArgument("password must not be only white space", field="password")
    return password


def validate_display_name(display_name: str) -> str:
    cleaned = unicodedata.normalize("NFKC", display_name).strip()
    if len(cleaned) > MAX_DISPLAY_NAME_CHARS:
        raise InvalidArgument(f"display_name must be at most {MAX_DISPLAY_NAME_CHARS} characters", field="display_name")
    if any(unicodedata.category(ch) == "Cc" for ch in cleaned):
        raise InvalidArgument("display_name must not contain control characters", field="display_name")
    return cleaned
