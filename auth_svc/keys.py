"""The Ed25519 key that signs access tokens, loaded from a PEM file or generated for development."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    load_pem_private_key,
)

from common.tokens import key_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SigningKey:
    private_key: Ed25519PrivateKey
    kid: str


def load_or_create_signing_key(path: Path) -> SigningKey:
    if not path.exists():
        _create(path)
    key = load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return SigningKey(private_key=key, kid=key_id(key.public_key()))


def _create(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    # O_EXCL: if two replicas race on a shared data dir, one key wins and both load it.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    log.warning("generated a development signing key", extra={"path": str(path)})
