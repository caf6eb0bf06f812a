"""Connect-time address checks, plugged under httpx: the one SSRF guard of every connection
PixelFlow makes to a URL a user named (worker_svc's source fetches, api_svc's webhooks).

httpx 0.28's AsyncHTTPTransport does not take an httpcore network backend, so PinnedTransport is
a small httpx transport over an httpcore.AsyncConnectionPool that does. Every new connection the
pool opens (first request, each redirect hop, each reconnect) goes through
GuardedNetworkBackend.connect_tcp, which resolves the host once, drops refused addresses, and
dials a vetted IP literal: there is no second lookup a rebinding DNS server could answer
differently. TLS still verifies and sends SNI for the host name, because httpcore passes the
origin's host name to start_tls itself; the Host header comes from the URL as usual.
"""

from __future__ import annotations

import asyncio
import enum
import socket
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import cast

import httpcore
import httpx

from common.egress.addresses import IPAddress, IPNetwork, parse_ip_host, refusal_reason

Resolver = Callable[[str, int], Awaitable[Sequence[IPAddress]]]


class Refusal(enum.Enum):
    BLOCKED = "blocked"  # every address the host has is one the policy refuses
    INVALID_HOST = "invalid_host"  # a numeric host that is no address (1.2.3.4.5)
    UNRESOLVABLE = "unresolvable"  # DNS gave nothing
    UNIX_SOCKET = "unix_socket"


class EgressRefused(Exception):
    """A connection the guard would not open; `message` names the `subject` ("source",
    "callback") and is fit for the user who gave the URL. Raised from inside httpx's request:
    callers catch it around their request and translate it into their own error."""

    def __init__(self, refusal: Refusal, message: str) -> None:
        super().__init__(message)
        self.refusal = refusal
        self.message = message


async def resolve_with_event_loop(host: str, port: int) -> list[IPAddress]:
    """Every address the system resolver gives for host, in its order, without duplicates."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = parse_ip_host(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolve, refuse what the policy forbids, then dial the vetted IP through `dialer`."""

    def __init__(
        self,
        allowed_networks: Iterable[IPNetwork] = (),
        *,
        dialer: httpcore.AsyncNetworkBackend | None = None,
        resolver: Resolver = resolve_with_event_loop,
        subject: str = "source",
    ) -> None:
        self._allowed = tuple(allowed_networks)
        self._subject = subject
        self._dialer = dialer if dialer is not None else httpcore.AnyIOBackend()
        self._resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        vetted = [address for address in addresses if refusal_reason(address, self._allowed) is None]
        if not vetted:
            raise _blocked(self._subject, host, addresses[0], refusal_reason(addresses[0], self._allowed) or "")

        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in vetted:
            remaining = None if deadline is None else max(deadline - loop.time(), 0.0)
            try:
                return await self._dialer.connect_tcp(
                    str(address), port, timeout=remaining, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise EgressRefused(Refusal.UNIX_SOCKET, f"a {self._subject} cannot be reached over a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._dialer.sleep(seconds)

    async def _resolve(self, host: str, port: int) -> Sequence[IPAddress]:
        try:
            literal = parse_ip_host(host)
        except ValueError as exc:
            raise EgressRefused(Refusal.INVALID_HOST, f"the {self._subject} URL's host is not valid: {exc}") from None
        if literal is not None:
            return [literal]
        try:
            addresses = await self._resolver(host, port)
        except OSError:
            addresses = []
        if not addresses:
            raise EgressRefused(
                Refusal.UNRESOLVABLE, f"the {self._subject} host {host} could not be resolved (DNS lookup failed)"
            )
        return addresses


def _blocked(subject: str, host: str, address: IPAddress, reason: str) -> EgressRefused:
    if parse_ip_host(host) == address:
        message = f"the {subject} address {address} is {reason}, which is not allowed"
    else:
        message = f"the {subject} host {host} resolves to {reason} ({address}), which is not allowed"
    return EgressRefused(Refusal.BLOCKED, message)


# httpcore exception -> the httpx exception httpx's own transport would raise for it.
_EXCEPTIONS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
}


@contextmanager
def _httpx_exceptions() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for cls in type(exc).__mro__:
            if cls in _EXCEPTIONS:
                raise _EXCEPTIONS[cls](str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes] | Iterable[bytes]) -> None:
        self._stream = cast(AsyncIterable[bytes], stream)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_exceptions():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        close = getattr(self._stream, "aclose", None)
        if close is not None:
            await close()


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport whose connections are opened by GuardedNetworkBackend."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend, ssl_context: ssl.SSLContext) -> None:
        # No proxies: a proxy would make the connect-time check judge the proxy, not the origin.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=backend, max_connections=4, http1=True, http2=False
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=cast(AsyncIterable[bytes], request.stream),
            extensions=request.extensions,
        )
        with _httpx_exceptions():
            response = await self._pool.handle_async_request(core_request)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()
