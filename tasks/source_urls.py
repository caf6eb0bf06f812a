"""Up-front checks of a source URL, before a task is stored.

This is syntax only: it never resolves a host name. Which addresses may be reached is decided at
connect time by the worker (worker_svc.sources), for every connection and every redirect hop,
because DNS answers can change between now and then.

The URL is parsed with httpx, the same parser the worker fetches with, so the two never disagree
about which host a URL names.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata

import httpx

from common.errors import InvalidArgument

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

_FIELD = "source_url"
# One DNS label after IDNA encoding. Underscores appear in real host names, so they pass.
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_MAX_HOST_LENGTH = 253


def _refuse(rule: str, message: str) -> InvalidArgument:
    return InvalidArgument(message, field=_FIELD, rule=f"{_FIELD}.{rule}")


def _authority(url: str) -> str:
    """The text between '//' and the path, query or fragment ('' when there is none)."""
    _, separator, rest = url.partition("//")
    if not separator:
        return ""
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _check_characters(url: str) -> None:
    for position, char in enumerate(url):
        if char.isspace():
            raise _refuse(
                "whitespace", f"the source URL contains whitespace at position {position}; encode spaces as %20"
            )
        if unicodedata.category(char) in ("Cc", "Cf"):
            raise _refuse(
                "control_character",
                f"the source URL contains a control character (U+{ord(char):04X}) at position {position}",
            )
    if "\\" in url:
        raise _refuse("backslash", "the source URL contains a backslash; use '/' to separate path segments")


def _check_host(raw_host: str) -> None:
    if not raw_host:
        raise _refuse("host_required", "the source URL needs a host, for example https://example.com/image.jpg")
    if "%" in raw_host:
        raise _refuse(
            "host_percent", f"the source URL's host {raw_host!r} contains '%', which is not allowed in a host"
        )
    if ":" in raw_host:
        try:
            ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise _refuse("host_ipv6", f"the source URL's host [{raw_host}] is not a valid IPv6 address") from None
        return
    host = raw_host.removesuffix(".")
    if len(host) > _MAX_HOST_LENGTH or not all(_LABEL.match(label) for label in host.split(".")):
        raise _refuse("host_name", f"the source URL's host {raw_host!r} is not a valid host name")


def validate_source_url(url: str) -> str:
    """Return the URL (surrounding whitespace removed) if it may be queued for fetching.

    Raises InvalidArgument(field="source_url") with a message that says what to fix.
    """
    url = url.strip()
    if not url:
        raise _refuse("required", "the source URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise _refuse("max_len", f"the source URL is {len(url)} characters long; at most {MAX_URL_LENGTH} are allowed")
    _check_characters(url)

    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme not in ALLOWED_SCHEMES:
        shown = f"a {scheme!r} URL" if scheme and re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) else "this URL"
        raise _refuse("scheme", f"only http and https source URLs can be fetched, not {shown}")
    if not url.lower().startswith(f"{scheme}://"):
        raise _refuse("scheme_host", f"the source URL must start with {scheme}:// followed by a host")
    if "@" in _authority(url):
        raise _refuse(
            "credentials", "the source URL must not contain credentials (user:password@); use a URL that needs no login"
        )

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _refuse("syntax", f"the source URL is not valid: {exc}") from None

    _check_host(parsed.raw_host.decode("ascii"))
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise _refuse("port", f"the source URL's port {parsed.port} is out of range (1-65535)")
    return url
