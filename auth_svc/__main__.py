"""Runs auth_svc: `python -m auth_svc` serves, `python -m auth_svc migrate` only migrates,
`python -m auth_svc grant-admin EMAIL` / `revoke-admin EMAIL` set a user's admin flag.

This is the one place that builds the service's objects.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import timedelta

from pixelflow.v1 import auth_pb2, auth_pb2_grpc
from sqlalchemy.ext.asyncio import async_sessionmaker

from auth_svc.config import AuthSettings
from auth_svc.keys import load_or_create_signing_key
from auth_svc.migrate import upgrade_to_head
from auth_svc.passwords import PasswordHasher
from auth_svc.repository import AuthRepository, open_engine
from auth_svc.service import AuthService, Policy
from auth_svc.servicer import AuthServicer
from auth_svc.tokens import AccessTokenIssuer
from auth_svc.validation import validate_email
from common.logging import configure_logging
from common.server import serve
from common.tracing import configure_tracing

log = logging.getLogger("auth_svc")


async def run(settings: AuthSettings) -> None:
    await asyncio.to_thread(upgrade_to_head, settings.auth_database_url)
    engine = open_engine(settings.auth_database_url)
    signing_key = load_or_create_signing_key(settings.signing_key_path)
    hasher = await asyncio.to_thread(
        PasswordHasher, rounds=settings.bcrypt_rounds, concurrency=settings.bcrypt_concurrency
    )
    service = AuthService(
        AuthRepository(async_sessionmaker(engine, expire_on_commit=False)),
        hasher,
        AccessTokenIssuer(
            signing_key,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            ttl=timedelta(seconds=settings.access_token_ttl_seconds),
        ),
        {signing_key.kid: signing_key.private_key.public_key()},
        Policy(
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            refresh_retry_grace=timedelta(seconds=settings.refresh_retry_grace_seconds),
            login_max_attempts=settings.login_max_attempts,
            login_window=timedelta(seconds=settings.login_window_seconds),
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        ),
    )
    await serve(
        settings=settings,
        port=settings.auth_port,
        service_names=[auth_pb2.DESCRIPTOR.services_by_name["AuthService"].full_name],
        register=lambda server: auth_pb2_grpc.add_AuthServiceServicer_to_server(AuthServicer(service), server),
        on_shutdown=engine.dispose,
        metrics_port=settings.auth_metrics_port,
    )


def main() -> None:
    settings = AuthSettings()
    configure_logging("auth_svc", settings.log_level)
    configure_tracing("auth_svc")
    if sys.argv[1:] == ["migrate"]:
        upgrade_to_head(settings.auth_database_url)
        log.info("migrations applied")
        return
    if len(sys.argv) == 3 and sys.argv[1] in ("grant-admin", "revoke-admin"):
        sys.exit(asyncio.run(set_admin(settings, sys.argv[2], admin=sys.argv[1] == "grant-admin")))
    asyncio.run(run(settings))


async def set_admin(settings: AuthSettings, email: str, *, admin: bool) -> int:
    """`python -m auth_svc grant-admin EMAIL` (or revoke-admin): effective from the user's next
    login or token refresh (an access token carries the flag for its 15 minutes)."""
    engine = open_engine(settings.auth_database_url)
    try:
        found = await AuthRepository(async_sessionmaker(engine, expire_on_commit=False)).set_admin(
            validate_email(email), admin
        )
    finally:
        await engine.dispose()
    if not found:
        log.error("no such user", extra={"email": email})
        return 1
    log.info("admin flag set (effective from the next login or token refresh)", extra={"email": email, "admin": admin})
    return 0


if __name__ == "__main__":
    main()
