"""Webhook secrets and signatures, the Standard Webhooks way (the `standardwebhooks` package
signs; receivers verify with the same package, or any implementation of the convention)."""

from __future__ import annotations

import base64
import secrets
from datetime import datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"  # noqa: S105 - the Standard Webhooks prefix, not a secret
_SECRET_BYTES = 24


def new_secret() -> str:
    """`whsec_` + base64 of 24 random bytes (192 bits; Standard Webhooks asks for 24–64)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(_SECRET_BYTES)).decode()


def secret_hint(secret: str) -> str:
    """Enough of a secret to tell which one is in force, nothing to sign with."""
    return f"{SECRET_PREFIX}…{secret[-4:]}"


def signed_headers(secret: str, event_id: str, body: bytes, at: datetime) -> dict[str, str]:
    """The three headers of one attempt: the event's id (the same on every retry: receivers
    dedupe on it), the attempt's time, and v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">."""
    return {
        "webhook-id": event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Webhook(secret).sign(event_id, at, body),
    }
