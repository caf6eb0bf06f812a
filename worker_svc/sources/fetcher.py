"""Fetch a task's source image over http(s), within the policy's limits.

Redirects are followed here, one hop at a time, so each Location is re-validated (scheme, syntax)
before the guarded backend re-checks the address it resolves to. The body is read as a stream and
abandoned as soon as it passes max_bytes, before or after decoding any Content-Encoding
(worker_svc.sources.decoding).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import httpcore
import httpx

from common.egress import (
    EgressRefused,
    GuardedNetworkBackend,
    IPNetwork,
    PinnedTransport,
    Refusal,
    Resolver,
    resolve_with_event_loop,
)
from common.errors import InvalidArgument
from tasks.failures import FailureCode
from tasks.source_urls import ALLOWED_SCHEMES, validate_source_url
from worker_svc.sizes import describe_size
from worker_svc.sources.decoding import BoundedDecoder, encodings
from worker_svc.sources.errors import SourceError

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
# What the connect-time guard's refusals are on a task.
_REFUSALS = {
    Refusal.BLOCKED: FailureCode.SOURCE_BLOCKED,
    Refusal.UNIX_SOCKET: FailureCode.SOURCE_BLOCKED,
    Refusal.INVALID_HOST: FailureCode.SOURCE_INVALID_URL,
    Refusal.UNRESOLVABLE: FailureCode.SOURCE_UNREACHABLE,
}


@dataclass(frozen=True)
class FetchPolicy:
    max_bytes: int = 25 * 1024 * 1024
    connect_timeout: float = 5.0
    read_timeout: float = 15.0
    total_timeout: float = 60.0
    max_redirects: int = 3
    # Networks that may be reached although they are private/loopback/... (local use and tests).
    allowed_networks: Sequence[IPNetwork] = ()
    user_agent: str = "PixelFlow-worker/0.1 (image fetcher)"


@dataclass(frozen=True)
class FetchedSource:
    data: bytes
    content_type: str | None
    final_url: str


def _media_type(header: str | None) -> str | None:
    media_type = (header or "").split(";", 1)[0].strip().lower()
    return media_type or None


class SourceFetcher:
    """Fetches one URL at a time per call; safe to share between concurrent tasks."""

    def __init__(
        self,
        settings: FetchPolicy,
        *,
        dialer: httpcore.AsyncNetworkBackend | None = None,
        resolver: Resolver = resolve_with_event_loop,
    ) -> None:
        self._policy = settings
        self._backend = GuardedNetworkBackend(settings.allowed_networks, dialer=dialer, resolver=resolver)
        self._ssl_context = httpx.create_ssl_context()
        self._timeout = httpx.Timeout(
            connect=settings.connect_timeout,
            read=settings.read_timeout,
            write=settings.read_timeout,
            pool=settings.connect_timeout,
        )

    async def fetch(self, url: str) -> FetchedSource:
        try:
            url = validate_source_url(url)
        except InvalidArgument as exc:
            raise SourceError(FailureCode.SOURCE_INVALID_URL, exc.message) from None
        try:
            async with asyncio.timeout(self._policy.total_timeout):
                return await self._fetch(httpx.URL(url))
        except TimeoutError:
            raise SourceError(
                FailureCode.SOURCE_TIMEOUT,
                f"fetching the source took longer than the {self._policy.total_timeout:g}s limit",
            ) from None
        except EgressRefused as exc:
            raise SourceError(_REFUSALS[exc.refusal], exc.message) from None

    async def _fetch(self, url: httpx.URL) -> FetchedSource:
        # A client per fetch: no connection, cookie or DNS answer outlives one task's fetch.
        async with httpx.AsyncClient(
            transport=PinnedTransport(self._backend, self._ssl_context),
            follow_redirects=False,
            trust_env=False,
            timeout=self._timeout,
            headers={"User-Agent": self._policy.user_agent, "Accept": "image/*, */*;q=0.5"},
        ) as client:
            # Ask for the bytes as stored, so max_bytes limits what goes over the wire too.
            client.headers["Accept-Encoding"] = "identity"
            redirects = 0
            while True:
                try:
                    async with client.stream("GET", url) as response:
                        if response.status_code in _REDIRECT_STATUSES and "location" in response.headers:
                            if redirects >= self._policy.max_redirects:
                                raise SourceError(
                                    FailureCode.TOO_MANY_REDIRECTS,
                                    f"the source redirected more than {self._policy.max_redirects} times",
                                )
                            redirects += 1
                            url = self._redirect_target(url, response.headers["location"])
                            continue
                        _check_status(response)
                        data = await self._read_body(response)
                        content_type = _media_type(response.headers.get("content-type"))
                        return FetchedSource(data=data, content_type=content_type, final_url=str(url))
                except httpx.HTTPError as exc:
                    raise _translate(exc, url) from None

    def _redirect_target(self, current: httpx.URL, location: str) -> httpx.URL:
        try:
            target = current.join(location)
        except httpx.InvalidURL:
            raise SourceError(
                FailureCode.SOURCE_INVALID_URL, f"the source redirected to an invalid URL ({location[:200]!r})"
            ) from None
        if target.scheme not in ALLOWED_SCHEMES:
            raise SourceError(
                FailureCode.SOURCE_BLOCKED,
                f"the source redirected to a {target.scheme}: URL; only http and https can be fetched",
            )
        try:
            return httpx.URL(validate_source_url(str(target)))
        except InvalidArgument as exc:
            raise SourceError(
                FailureCode.SOURCE_INVALID_URL, f"the source redirected to a bad URL: {exc.message}"
            ) from None

    async def _read_body(self, response: httpx.Response) -> bytes:
        limit = self._policy.max_bytes
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise SourceError(
                FailureCode.SOURCE_TOO_LARGE,
                f"the source is {describe_size(int(declared))}, more than the {describe_size(limit)} limit",
            )
        # The raw bytes, decoded here within the limit (httpx would inflate each chunk whole).
        decoder = BoundedDecoder(encodings(response.headers.get("content-encoding")), limit)
        pieces: list[bytes] = []
        async for chunk in response.aiter_raw():
            pieces.extend(decoder.feed(chunk))
        return b"".join(pieces)


def _check_status(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    described = f"{status} {response.reason_phrase}".strip()
    if status in (404, 410):
        raise SourceError(FailureCode.SOURCE_NOT_FOUND, f"the source URL returned {described}: there is no image there")
    retryable = status >= 500 or status in _RETRYABLE_STATUSES
    hint = "; it will be tried again" if retryable else ""
    raise SourceError(FailureCode.SOURCE_HTTP_ERROR, f"the source server answered {described}{hint}", retryable)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _translate(exc: httpx.HTTPError, url: httpx.URL) -> SourceError:
    where = f"{url.host}:{url.port or (443 if url.scheme == 'https' else 80)}"
    if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
        return SourceError(FailureCode.SOURCE_UNREACHABLE, f"connecting to the source at {where} timed out")
    if isinstance(exc, httpx.TimeoutException):
        return SourceError(FailureCode.SOURCE_TIMEOUT, f"the source at {where} stopped sending data (read timed out)")
    if isinstance(exc, httpx.ConnectError) and _caused_by(exc, ssl.SSLCertVerificationError):
        return SourceError(
            FailureCode.SOURCE_UNREACHABLE, f"the TLS certificate of the source at {where} could not be verified", False
        )
    if isinstance(exc, httpx.ConnectError):
        return SourceError(FailureCode.SOURCE_UNREACHABLE, f"could not connect to the source at {where}")
    if isinstance(exc, httpx.TransportError):
        return SourceError(FailureCode.SOURCE_UNREACHABLE, f"the connection to the source at {where} failed: {exc}")
    return SourceError(FailureCode.SOURCE_HTTP_ERROR, f"fetching the source failed: {exc}", True)
