"""Calls between PixelFlow's own services (worker_svc → api_svc's TaskLifecycleService): they
carry the deployment's internal secret, which no user token can stand in for."""

from __future__ import annotations

import hmac
from collections.abc import Iterable
from typing import Any

from common.errors import Unauthenticated
from common.interceptors import Authenticate

HEADER = "x-pixelflow-internal"


def internal_metadata(secret: str) -> tuple[tuple[str, str]]:
    return ((HEADER, secret),)


def internal_authenticator(secret: str) -> Authenticate:
    """Admits a call whose metadata carries `secret` (compared in constant time)."""
    expected = secret.encode()

    async def authenticate(metadata: object) -> None:
        pairs: Iterable[tuple[str, Any]] = metadata  # type: ignore[assignment]  # grpc's invocation metadata
        given = next((value for key, value in pairs if key == HEADER), None)
        if not isinstance(given, str) or not hmac.compare_digest(given.encode(), expected):
            raise Unauthenticated("this internal API needs the deployment's secret (PIXELFLOW_INTERNAL_SECRET)")

    return authenticate
