"""Local verification of access tokens with auth_svc's published keys (api_svc, worker_svc).

No round trip per request: keys are fetched at start and refreshed periodically (and at once
when a token names an unknown kid), and revoked sessions are polled every few seconds, so a
logout takes effect within `revocation_poll_seconds`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from contextvars import ContextVar
from datetime import UTC, datetime

import grpc
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.v1 import auth_pb2, auth_pb2_grpc
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from common.errors import Unauthenticated, Unavailable
from common.settings import TokenVerifierSettings
from common.tokens import INVALID_TOKEN_MESSAGE, AccessClaims, b64url_decode, bearer_token, verify_access_token

log = logging.getLogger(__name__)

MISSING_TOKEN_MESSAGE = "an access token is required: send 'authorization: Bearer <token>'"  # noqa: S105
# A token naming an unknown kid triggers a key refresh at most this often.
_KEY_REFRESH_MIN_INTERVAL = 10.0
# The claims the interceptor verified for the call being served: each call runs in a task of its
# own, so a value never crosses from one call to another.
_caller: ContextVar[AccessClaims | None] = ContextVar("pixelflow_caller", default=None)


class TokenVerifier:
    def __init__(
        self,
        auth_addr: str,
        *,
        revocation_poll_seconds: float,
        keys_refresh_seconds: float,
        revocation_max_staleness_seconds: float = 10.0,
    ) -> None:
        self._channel = grpc.aio.insecure_channel(auth_addr)
        self._auth = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._revocation_poll = revocation_poll_seconds
        self._max_staleness = revocation_max_staleness_seconds
        self._revocations_at = 0.0  # monotonic time of the last successful poll
        self._keys_refresh = keys_refresh_seconds
        self._keys: dict[str, Ed25519PublicKey] = {}
        self._issuer = ""
        self._audience = ""
        self._revoked: dict[str, datetime] = {}  # session id → when its tokens expire anyway
        self._since: Timestamp | None = None
        self._keys_fetched_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_settings(cls, settings: TokenVerifierSettings) -> TokenVerifier:
        return cls(
            settings.auth_addr,
            revocation_poll_seconds=settings.revocation_poll_seconds,
            keys_refresh_seconds=settings.signing_keys_refresh_seconds,
            revocation_max_staleness_seconds=settings.revocation_max_staleness_seconds,
        )

    async def start(self) -> None:
        """Waits (with backoff, up to a minute) for auth_svc, then keeps keys and revocations fresh."""
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(grpc.aio.AioRpcError),
            wait=wait_exponential(multiplier=0.2, max=5),
            stop=stop_after_delay(60),
            reraise=True,
        ):
            with attempt:
                await self._refresh_keys()
                await self._refresh_revocations()
        self._tasks = [
            asyncio.create_task(self._every(self._keys_refresh, self._refresh_keys)),
            asyncio.create_task(self._every(self._revocation_poll, self._refresh_revocations)),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._channel.close(grace=None)

    async def _every(self, seconds: float, job: object) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()  # type: ignore[operator]
            except grpc.aio.AioRpcError as exc:
                log.warning("auth_svc unreachable", extra={"error": exc.code().name})
            except Exception:
                # Whatever it was, keep polling: a poller that stopped would leave the
                # revocations stale, which `fresh` turns into refusals, not into trust.
                log.exception("refreshing from auth_svc failed")

    @property
    def fresh(self) -> bool:
        """True while the revocations are known to be at most `max_staleness` seconds old."""
        return time.monotonic() - self._revocations_at <= self._max_staleness

    async def _refresh_keys(self) -> None:
        published = await self._auth.GetPublicKeys(auth_pb2.GetPublicKeysRequest(), timeout=5)
        self._keys = {key.kid: Ed25519PublicKey.from_public_bytes(b64url_decode(key.x)) for key in published.keys}
        self._issuer, self._audience = published.issuer, published.audience
        self._keys_fetched_at = time.monotonic()

    async def _refresh_revocations(self) -> None:
        request = auth_pb2.ListRevocationsRequest()
        if self._since is not None:
            request.since.CopyFrom(self._since)
        reply = await self._auth.ListRevocations(request, timeout=5)
        for item in reply.revocations:
            self._revoked[item.session_id] = item.expires_at.ToDatetime(tzinfo=UTC)
        self._since = reply.as_of
        self._revocations_at = time.monotonic()
        now = datetime.now(tz=UTC)
        self._revoked = {sid: until for sid, until in self._revoked.items() if until > now}

    async def authenticate(self, metadata: object) -> AccessClaims:
        """`verify`, remembered for the rest of the call: the interceptor's hook (common.server),
        so that handlers asking `caller` do not check the token a second time."""
        claims = await self.verify(metadata)
        _caller.set(claims)
        return claims

    async def caller(self, metadata: object) -> AccessClaims:
        """The call's verified claims: those the interceptor checked, else checked now."""
        return _caller.get() or await self.verify(metadata)

    async def verify(self, metadata: object) -> AccessClaims:
        token = bearer_token(metadata)
        if token is None:
            raise Unauthenticated(MISSING_TOKEN_MESSAGE)
        if not self.fresh:
            raise Unavailable(
                "sign-ins cannot be checked right now (the auth service has not answered for "
                f"{self._max_staleness:.0f} s); try again shortly"
            )
        try:
            claims = verify_access_token(token, self._keys, issuer=self._issuer, audience=self._audience)
        except Unauthenticated:
            # Perhaps the key was rotated since we last looked: refresh (rate-limited) and retry once.
            if time.monotonic() - self._keys_fetched_at < _KEY_REFRESH_MIN_INTERVAL:
                raise
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self._refresh_keys()
            claims = verify_access_token(token, self._keys, issuer=self._issuer, audience=self._audience)
        if claims.session_id in self._revoked:
            raise Unauthenticated(INVALID_TOKEN_MESSAGE)
        return claims
