"""One POST of a webhook event, through the SSRF guard every user-named URL goes through
(common.egress: each connection's resolved address checked when it is made, the connection
pinned to it). Redirects are never followed: a 3xx is an answer like any other non-2xx, so a
receiver cannot point our signed POST at an address the guard would refuse, or anywhere else.

What an attempt's outcome means (decision 0018, after Standard Webhooks and Svix):
- 2xx: delivered;
- 410 Gone: the receiver says it is gone for good: given up at once;
- every other answer (3xx, 4xx, 5xx, 429 included), a timeout, a refused or broken
  connection, a host DNS cannot resolve: tried again later, until the retry period ends (a
  receiver answering 401 or 404 is often being fixed by its owner right now);
- an address the guard refuses (private, loopback, metadata...), a Unix socket, a malformed
  numeric host: given up at once, without connecting.
"""

from __future__ import annotations

import asyncio
import enum
import ssl
from collections.abc import Iterable, Mapping
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

USER_AGENT = "PixelFlow-Webhooks/0.1"
_GONE = 410


class Verdict(enum.Enum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"


@dataclass(frozen=True)
class AttemptResult:
    verdict: Verdict
    http_status: int  # 0: no answer
    error: str  # why there was no (good) answer; empty when delivered
    duration_ms: int


class WebhookSender:
    """Safe to share between concurrent deliveries."""

    def __init__(
        self,
        allowed_networks: Iterable[IPNetwork],
        timeout_seconds: float,
        *,
        dialer: httpcore.AsyncNetworkBackend | None = None,
        resolver: Resolver = resolve_with_event_loop,
    ) -> None:
        self._backend = GuardedNetworkBackend(allowed_networks, dialer=dialer, resolver=resolver, subject="callback")
        self._ssl_context = httpx.create_ssl_context()
        self._timeout_seconds = timeout_seconds

    async def send(self, url: str, headers: Mapping[str, str], body: bytes) -> AttemptResult:
        loop = asyncio.get_running_loop()
        started = loop.time()

        def result(verdict: Verdict, status: int = 0, error: str = "") -> AttemptResult:
            return AttemptResult(verdict, status, error, int((loop.time() - started) * 1000))

        try:
            async with asyncio.timeout(self._timeout_seconds):
                status = await self._post(url, headers, body)
        except TimeoutError:
            return result(Verdict.RETRY, error=f"no answer within {self._timeout_seconds:g} s")
        except EgressRefused as exc:
            retry = exc.refusal is Refusal.UNRESOLVABLE  # DNS may answer later
            return result(Verdict.RETRY if retry else Verdict.GIVE_UP, error=exc.message)
        except httpx.HTTPError as exc:
            return result(Verdict.RETRY, error=_describe(exc))
        return result(*judge(status))

    async def _post(self, url: str, headers: Mapping[str, str], body: bytes) -> int:
        # A client per attempt: no connection or DNS answer outlives it; no proxies or
        # environment settings (trust_env=False), which would make the guard judge the proxy.
        async with (
            httpx.AsyncClient(
                transport=PinnedTransport(self._backend, self._ssl_context),
                follow_redirects=False,
                trust_env=False,
                timeout=self._timeout_seconds,
                headers={"User-Agent": USER_AGENT, "Content-Type": "application/json"},
            ) as client,
            client.stream("POST", url, content=body, headers=dict(headers)) as response,
        ):
            return response.status_code  # the body is not read: nothing in it matters


def judge(status: int) -> tuple[Verdict, int, str]:
    """What an HTTP answer means for the delivery: (verdict, status, why it is not delivered)."""
    if 200 <= status < 300:
        return Verdict.DELIVERED, status, ""
    if status == _GONE:
        return Verdict.GIVE_UP, status, "the receiver answered 410 Gone: not tried again"
    if 300 <= status < 400:
        return Verdict.RETRY, status, f"the receiver answered {status}: webhooks do not follow redirects"
    return Verdict.RETRY, status, f"the receiver answered {status}"


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectError) and _caused_by(exc, ssl.SSLCertVerificationError):
        return "the receiver's TLS certificate could not be verified"
    if isinstance(exc, httpx.ConnectTimeout):
        return "connecting to the receiver timed out"
    if isinstance(exc, httpx.ConnectError):
        return "could not connect to the receiver"
    if isinstance(exc, httpx.TimeoutException):
        return "the receiver stopped answering"
    return f"the connection to the receiver failed ({type(exc).__name__})"


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
