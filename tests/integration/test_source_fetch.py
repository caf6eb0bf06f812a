"""SourceFetcher against a real HTTP server on 127.0.0.1.

Nothing here leaves the machine: the dialer under the guarded backend records every connection
attempt and refuses (as a test failure) to dial anything outside 127.0.0.0/8, and the resolver is
a fixed table, so no DNS query is made either. "Blocked without connecting" is proven by that
record staying empty and by the server's request count.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import IPv4Network, ip_address
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpcore
import pytest

from common.egress import resolve_with_event_loop
from tasks.failures import FailureCode
from worker_svc.sources import FetchPolicy, IPAddress, SourceError, SourceFetcher

pytestmark = pytest.mark.integration

IMAGE = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
LOCALHOST_ONLY = [IPv4Network("127.0.0.1/32")]
SMALL_LIMIT = 64 * 1024


class SourceServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SourceHandler)
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.stop = threading.Event()

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


class SourceHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SourceServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self.server.requests.append((self.path, self.headers.get("Host", "")))
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query).items()}
        route = url.path.strip("/").split("/")
        handler = getattr(self, f"route_{route[0].replace('-', '_')}", None)
        if handler is None:
            self._send(404, b"no such route")
        else:
            handler(route[1:], query)

    def route_image(self, _args: list[str], _query: dict[str, str]) -> None:
        self._send(200, IMAGE, {"Content-Type": "image/png; charset=binary"})

    def route_status(self, args: list[str], _query: dict[str, str]) -> None:
        self._send(int(args[0]), b"status body")

    def route_redirect(self, _args: list[str], query: dict[str, str]) -> None:
        headers = {"Location": query["to"]}
        if query.get("close"):
            headers["Connection"] = "close"
            self.close_connection = True
        self._send(int(query.get("status", "302")), b"", headers)

    def route_chain(self, args: list[str], _query: dict[str, str]) -> None:
        remaining = int(args[0])
        if remaining == 0:
            self.route_image([], {})
        else:
            self._send(302, b"", {"Location": f"/chain/{remaining - 1}"})

    def route_big_declared(self, _args: list[str], _query: dict[str, str]) -> None:
        # Declares far more than the limit, then sends almost nothing and holds the connection:
        # a client that waited for the body would hang here instead of refusing at once.
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Content-Length", str(10 * SMALL_LIMIT))
        self.end_headers()
        self.wfile.write(b"x" * 10)
        self.wfile.flush()
        self.server.stop.wait(10)

    def _stream_chunks(self, *, chunked: bool) -> None:
        chunk = b"x" * 16 * 1024
        try:
            for _ in range(100):  # 1.6 MB at most, far over the limit
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
                self.wfile.flush()
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up once it had seen enough, as it should

    def route_big_chunked(self, _args: list[str], _query: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._stream_chunks(chunked=True)

    def route_big_until_close(self, _args: list[str], _query: dict[str, str]) -> None:
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "image/png")
        self.send_header("Connection", "close")
        self.end_headers()
        self._stream_chunks(chunked=False)

    def route_stall(self, _args: list[str], _query: dict[str, str]) -> None:
        self.server.stop.wait(10)
        self.close_connection = True

    def route_trickle(self, _args: list[str], _query: dict[str, str]) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "1000")
        self.end_headers()
        try:
            for _ in range(1000):
                if self.server.stop.wait(0.05):
                    break
                self.wfile.write(b"x")
                self.wfile.flush()
        except OSError:
            pass


class RecordingDialer(httpcore.AsyncNetworkBackend):
    """The real dialer, with a record of every attempt, that will not dial off this machine."""

    def __init__(self) -> None:
        self.attempts: list[tuple[str, int]] = []
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        self.attempts.append((host, port))
        if not ip_address(host).is_loopback:
            raise AssertionError(f"the fetcher tried to dial {host}:{port}, which the test forbids")
        return await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class TableResolver:
    """DNS for the tests: a fixed table, each answer list used in turn (the last one repeats)."""

    def __init__(self, table: dict[str, list[list[str]]] | None = None) -> None:
        self._table = table or {}
        self.lookups: list[str] = []

    async def __call__(self, host: str, port: int) -> Sequence[IPAddress]:
        self.lookups.append(host)
        answers = self._table.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        return [ip_address(address) for address in answer]


@pytest.fixture(scope="module")
def server() -> Iterator[SourceServer]:
    running = SourceServer()
    thread = threading.Thread(target=running.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        running.shutdown()
        running.server_close()
        thread.join(timeout=5)


@pytest.fixture
def dialer() -> RecordingDialer:
    return RecordingDialer()


def fetcher(
    dialer: RecordingDialer,
    resolver: TableResolver | None = None,
    *,
    allowed: list[IPv4Network] | None = None,
    **limits: Any,
) -> SourceFetcher:
    policy = FetchPolicy(
        allowed_networks=LOCALHOST_ONLY if allowed is None else allowed,
        **{"connect_timeout": 2.0, "read_timeout": 2.0, "total_timeout": 10.0, **limits},
    )
    return SourceFetcher(policy, dialer=dialer, resolver=resolver or TableResolver())


async def refused(source: SourceFetcher, url: str) -> SourceError:
    with pytest.raises(SourceError) as caught:
        await source.fetch(url)
    return caught.value


# --- what works ----------------------------------------------------------------------------------


async def test_allowlisted_fetch_returns_bytes_and_content_type(server: SourceServer, dialer: RecordingDialer) -> None:
    fetched = await fetcher(dialer).fetch(server.url("/image"))
    assert fetched.data == IMAGE
    assert fetched.content_type == "image/png"
    assert fetched.final_url == server.url("/image")
    assert dialer.attempts == [("127.0.0.1", server.port)]


async def test_host_name_is_resolved_once_and_the_vetted_ip_dialled(
    server: SourceServer, dialer: RecordingDialer
) -> None:
    resolver = TableResolver({"images.test": [["127.0.0.1"]]})
    fetched = await fetcher(dialer, resolver).fetch(server.url("/image", host="images.test"))
    assert fetched.data == IMAGE
    assert resolver.lookups == ["images.test"]
    assert dialer.attempts == [("127.0.0.1", server.port)]
    assert server.requests[-1] == ("/image", f"images.test:{server.port}")


async def test_refused_answers_are_dropped_and_an_allowed_one_is_used(
    server: SourceServer, dialer: RecordingDialer
) -> None:
    resolver = TableResolver({"mixed.test": [["10.0.0.1", "169.254.169.254", "127.0.0.1"]]})
    fetched = await fetcher(dialer, resolver).fetch(server.url("/image", host="mixed.test"))
    assert fetched.data == IMAGE
    assert dialer.attempts == [("127.0.0.1", server.port)]


async def test_three_redirects_are_followed(server: SourceServer, dialer: RecordingDialer) -> None:
    fetched = await fetcher(dialer).fetch(server.url("/chain/3"))
    assert fetched.data == IMAGE
    assert fetched.final_url == server.url("/chain/0")


# --- blocked addresses ---------------------------------------------------------------------------


async def test_loopback_without_the_allowlist_is_blocked_before_any_request(
    server: SourceServer, dialer: RecordingDialer
) -> None:
    before = len(server.requests)
    error = await refused(fetcher(dialer, allowed=[]), server.url("/image"))
    assert error.code == FailureCode.SOURCE_BLOCKED
    assert not error.retryable
    assert error.message == "the source address 127.0.0.1 is a loopback address, which is not allowed"
    assert dialer.attempts == []
    assert len(server.requests) == before


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("http://10.0.0.1/image.png", "a private address"),
        ("http://[::ffff:127.0.0.1]:{port}/image", "IPv4-mapped IPv6 address carrying a loopback address"),
        ("http://[::1]:{port}/image", "a loopback address"),
        ("http://2130706433:{port}/image", "a loopback address"),
        ("http://0x7f.1:{port}/image", "a loopback address"),
        ("http://017700000001:{port}/image", "a loopback address"),
        ("http://0xa9fea9fe/", "the cloud metadata address"),
        ("http://0.0.0.0:{port}/image", "an unspecified address"),
        ("http://[::]:{port}/image", "an unspecified address"),
        ("http://[fe80::1]/", "a link-local address"),
        ("http://[64:ff9b::a00:1]/", "NAT64 address carrying a private address"),
        ("http://[2002:7f00:1::]/", "6to4 address carrying a loopback address"),
        ("http://100.64.0.1/", "carrier-grade NAT"),
        ("http://224.0.0.1/", "a multicast address"),
    ],
)
async def test_forbidden_addresses_are_blocked_without_connecting(
    server: SourceServer, dialer: RecordingDialer, url: str, words: str
) -> None:
    before = len(server.requests)
    resolver = TableResolver()
    error = await refused(fetcher(dialer, resolver, allowed=[]), url.format(port=server.port))
    assert error.code == FailureCode.SOURCE_BLOCKED
    assert words in error.message
    assert "not allowed" in error.message
    assert dialer.attempts == []
    assert resolver.lookups == []  # numeric hosts never reach DNS
    assert len(server.requests) == before


@pytest.mark.parametrize("host", ["2130706433", "0x7f.1", "017700000001", "127.1"])
async def test_the_allowlist_judges_the_address_not_its_spelling(
    server: SourceServer, dialer: RecordingDialer, host: str
) -> None:
    fetched = await fetcher(dialer).fetch(server.url("/image", host=host))
    assert fetched.data == IMAGE
    assert dialer.attempts == [("127.0.0.1", server.port)]


async def test_a_name_resolving_to_a_private_address_is_blocked(dialer: RecordingDialer) -> None:
    resolver = TableResolver({"internal.test": [["10.0.0.1"]]})
    error = await refused(fetcher(dialer, resolver), "http://internal.test/image.png")
    assert error.code == FailureCode.SOURCE_BLOCKED
    assert (
        error.message == "the source host internal.test resolves to a private address (10.0.0.1), which is not allowed"
    )
    assert dialer.attempts == []


async def test_every_new_connection_is_checked_again(server: SourceServer, dialer: RecordingDialer) -> None:
    # DNS rebinding: the name first answers an allowed address, then a forbidden one. The redirect
    # closes the connection, so the second hop must connect (and resolve, and be checked) again.
    resolver = TableResolver({"rebind.test": [["127.0.0.1"], ["10.0.0.1"]]})
    target = server.url("/image", host="rebind.test")
    error = await refused(fetcher(dialer, resolver), server.url(f"/redirect?close=1&to={target}", host="rebind.test"))
    assert error.code == FailureCode.SOURCE_BLOCKED
    assert "(10.0.0.1)" in error.message
    assert resolver.lookups == ["rebind.test", "rebind.test"]
    assert dialer.attempts == [("127.0.0.1", server.port)]


@pytest.mark.parametrize(
    ("location", "words"),
    [
        ("http://10.0.0.1/", "the source address 10.0.0.1 is a private address"),
        ("http://127.0.0.2:{port}/image", "the source address 127.0.0.2 is a loopback address"),
        ("http://169.254.169.254/latest/meta-data/", "the cloud metadata address"),
        ("http://[::ffff:10.0.0.1]/", "carrying a private address"),
        ("file:///etc/passwd", "redirected to a file: URL"),
        ("ftp://127.0.0.1/image", "redirected to a ftp: URL"),
    ],
)
async def test_redirects_to_forbidden_places_are_blocked(
    server: SourceServer, dialer: RecordingDialer, location: str, words: str
) -> None:
    before = len(server.requests)
    url = server.url(f"/redirect?to={location.format(port=server.port)}")
    error = await refused(fetcher(dialer), url)
    assert error.code == FailureCode.SOURCE_BLOCKED
    assert words in error.message
    assert dialer.attempts == [("127.0.0.1", server.port)]  # only the allowlisted first hop
    assert len(server.requests) == before + 1


async def test_redirect_with_credentials_is_an_invalid_url(server: SourceServer, dialer: RecordingDialer) -> None:
    error = await refused(fetcher(dialer), server.url("/redirect?to=http://user:pw@127.0.0.1/"))
    assert error.code == FailureCode.SOURCE_INVALID_URL
    assert "credentials" in error.message


async def test_four_redirects_are_too_many(server: SourceServer, dialer: RecordingDialer) -> None:
    before = len(server.requests)
    error = await refused(fetcher(dialer), server.url("/chain/4"))
    assert error.code == FailureCode.TOO_MANY_REDIRECTS
    assert not error.retryable
    assert len(server.requests) == before + 4  # the fifth hop is never requested


# --- HTTP answers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (404, FailureCode.SOURCE_NOT_FOUND, False),
        (410, FailureCode.SOURCE_NOT_FOUND, False),
        (403, FailureCode.SOURCE_HTTP_ERROR, False),
        (400, FailureCode.SOURCE_HTTP_ERROR, False),
        (429, FailureCode.SOURCE_HTTP_ERROR, True),
        (500, FailureCode.SOURCE_HTTP_ERROR, True),
        (503, FailureCode.SOURCE_HTTP_ERROR, True),
        (304, FailureCode.SOURCE_HTTP_ERROR, False),
    ],
)
async def test_error_statuses(
    server: SourceServer, dialer: RecordingDialer, status: int, code: FailureCode, retryable: bool
) -> None:
    error = await refused(fetcher(dialer), server.url(f"/status/{status}"))
    assert error.code == code
    assert error.retryable is retryable
    assert str(status) in error.message


async def test_redirect_without_location_is_an_http_error(server: SourceServer, dialer: RecordingDialer) -> None:
    error = await refused(fetcher(dialer), server.url("/status/302"))
    assert error.code == FailureCode.SOURCE_HTTP_ERROR


# --- limits --------------------------------------------------------------------------------------


async def test_declared_oversize_body_is_refused_without_reading_it(
    server: SourceServer, dialer: RecordingDialer
) -> None:
    started = time.monotonic()
    error = await refused(fetcher(dialer, max_bytes=SMALL_LIMIT), server.url("/big-declared"))
    assert error.code == FailureCode.SOURCE_TOO_LARGE
    assert "640.0 KiB, more than the 64.0 KiB limit" in error.message
    assert time.monotonic() - started < 1.5  # the server holds the body back; waiting would time out


@pytest.mark.parametrize("path", ["/big-chunked", "/big-until-close"])
async def test_undeclared_oversize_body_is_cut_off_while_streaming(
    server: SourceServer, dialer: RecordingDialer, path: str
) -> None:
    error = await refused(fetcher(dialer, max_bytes=SMALL_LIMIT), server.url(path))
    assert error.code == FailureCode.SOURCE_TOO_LARGE
    assert not error.retryable
    assert "larger than the 64.0 KiB limit" in error.message


async def test_body_at_the_limit_is_accepted(server: SourceServer, dialer: RecordingDialer) -> None:
    fetched = await fetcher(dialer, max_bytes=len(IMAGE)).fetch(server.url("/image"))
    assert fetched.data == IMAGE


async def test_a_stalled_server_times_out_on_read(server: SourceServer, dialer: RecordingDialer) -> None:
    started = time.monotonic()
    error = await refused(fetcher(dialer, read_timeout=0.5), server.url("/stall"))
    elapsed = time.monotonic() - started
    assert error.code == FailureCode.SOURCE_TIMEOUT
    assert error.retryable
    assert 0.4 < elapsed < 2.0


async def test_a_trickling_server_hits_the_total_timeout(server: SourceServer, dialer: RecordingDialer) -> None:
    started = time.monotonic()
    error = await refused(fetcher(dialer, read_timeout=5.0, total_timeout=0.6), server.url("/trickle"))
    elapsed = time.monotonic() - started
    assert error.code == FailureCode.SOURCE_TIMEOUT
    assert "0.6s" in error.message
    assert 0.5 < elapsed < 2.0


# --- unreachable sources -------------------------------------------------------------------------


async def test_connection_refused_is_unreachable_and_retryable(dialer: RecordingDialer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    error = await refused(fetcher(dialer), f"http://127.0.0.1:{closed_port}/image")
    assert error.code == FailureCode.SOURCE_UNREACHABLE
    assert error.retryable
    assert f"127.0.0.1:{closed_port}" in error.message
    assert dialer.attempts == [("127.0.0.1", closed_port)]


async def test_unknown_host_is_unreachable_and_retryable(dialer: RecordingDialer) -> None:
    error = await refused(fetcher(dialer), "http://no-such-host.test/image.png")
    assert error.code == FailureCode.SOURCE_UNREACHABLE
    assert error.retryable
    assert "could not be resolved" in error.message
    assert dialer.attempts == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/x", "http://user:pw@127.0.0.1/x", "http://1.2.3.4.5/", "http://[::1"])
async def test_invalid_urls_are_refused_before_anything_else(dialer: RecordingDialer, url: str) -> None:
    error = await refused(fetcher(dialer), url)
    assert error.code == FailureCode.SOURCE_INVALID_URL
    assert not error.retryable
    assert dialer.attempts == []


async def test_the_default_resolver_reads_the_system_answer() -> None:
    # A numeric host: getaddrinfo answers it without a DNS query.
    assert await resolve_with_event_loop("127.0.0.1", 80) == [ip_address("127.0.0.1")]
    assert await resolve_with_event_loop("::1", 80) == [ip_address("::1")]
