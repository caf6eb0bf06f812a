"""Up-front checks of a URL a user gives us to connect to — a task's source, a webhook's
callback — before anything is stored. One set of rules for both (`validate_source_url`,
`validate_callback_url`); only the field named and the wording differ.

This is syntax only: it never resolves a host name. Which addresses may be reached is decided at
connect time (common.egress: the worker for sources, api_svc for webhooks), for every
connection, because DNS answers can change between now and then.

The URL is parsed with httpx, the same parser the worker fetches with, so the two never disagree
about which host a URL names.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from dataclasses import dataclass

import httpx

from common.errors import InvalidArgument

MAX_URL_LENGTH = 2048
ALLOWED_SCHEMES = frozenset({"http", "https"})

# One DNS label after IDNA encoding. Underscores appear in real host names, so they pass.
_LABEL = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_MAX_HOST_LENGTH = 253


@dataclass(frozen=True)
class _UrlKind:
    field: str  # the request field named in the violation
    noun: str  # how messages call the URL
    use: str  # what we do with it ("fetched", "called")
    example: str

    def refuse(self, rule: str, message: str) -> InvalidArgument:
        return InvalidArgument(message, field=self.field, rule=f"{self.field}.{rule}")


_SOURCE = _UrlKind("source_url", "source URL", "fetched", "https://example.com/image.jpg")
_CALLBACK = _UrlKind("callback_url", "callback URL", "called", "https://example.com/hooks/pixelflow")


def _authority(url: str) -> str:
    """The text between '//' and the path, query or fragment ('' when there is none)."""
    _, separator, rest = url.partition("//")
    if not separator:
        return ""
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _check_characters(kind: _UrlKind, url: str) -> None:
    for position, char in enumerate(url):
        if char.isspace():
            raise kind.refuse(
                "whitespace", f"the {kind.noun} contains whitespace at position {position}; encode spaces as %20"
            )
        if unicodedata.category(char) in ("Cc", "Cf"):
            raise kind.refuse(
                "control_character",
                f"the {kind.noun} contains a control character (U+{ord(char):04X}) at position {position}",
            )
    if "\\" in url:
        raise kind.refuse("backslash", f"the {kind.noun} contains a backslash; use '/' to separate path segments")


def _check_host(kind: _UrlKind, raw_host: str) -> None:
    if not raw_host:
        raise kind.refuse("host_required", f"the {kind.noun} needs a host, for example {kind.example}")
    if "%" in raw_host:
        raise kind.refuse(
            "host_percent", f"the {kind.noun}'s host {raw_host!r} contains '%', which is not allowed in a host"
        )
    if ":" in raw_host:
        try:
            ipaddress.IPv6Address(raw_host)
        except ValueError:
            raise kind.refuse("host_ipv6", f"the {kind.noun}'s host [{raw_host}] is not a valid IPv6 address") from None
        return
    host = raw_host.removesuffix(".")
    if len(host) > _MAX_HOST_LENGTH or not all(_LABEL.match(label) for label in host.split(".")):
        raise kind.refuse("host_name", f"the {kind.noun}'s host {raw_host!r} is not a valid host name")


def validate_source_url(url: str) -> str:
    """Return the URL (surrounding whitespace removed) if it may be queued for fetching.

    Raises InvalidArgument(field="source_url") with a message that says what to fix.
    """
    return _validate(_SOURCE, url)


def validate_callback_url(url: str, field: str = "callback_url") -> str:
    """The same rules for a webhook's callback URL; InvalidArgument names `field` (the task's
    callback_url, or the user settings' default_url)."""
    return _validate(_UrlKind(field, _CALLBACK.noun, _CALLBACK.use, _CALLBACK.example), url)


def _validate(kind: _UrlKind, url: str) -> str:
    url = url.strip()
    if not url:
        raise kind.refuse("required", f"the {kind.noun} is empty")
    if len(url) > MAX_URL_LENGTH:
        raise kind.refuse(
            "max_len", f"the {kind.noun} is {len(url)} characters long; at most {MAX_URL_LENGTH} are allowed"
        )
    _check_characters(kind, url)

    scheme = url.partition(":")[0].lower() if ":" in url else ""
    if scheme not in ALLOWED_SCHEMES:
        shown = f"a {scheme!r} URL" if scheme and re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme) else "this URL"
        raise kind.refuse("scheme", f"only http and https {kind.noun}s can be {kind.use}, not {shown}")
    if not url.lower().startswith(f"{scheme}://"):
        raise kind.refuse("scheme_host", f"the {kind.noun} must start with {scheme}:// followed by a host")
    if "@" in _authority(url):
        raise kind.refuse(
            "credentials",
            f"the {kind.noun} must not contain credentials (user:password@); use a URL that needs no login",
        )

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise kind.refuse("syntax", f"the {kind.noun} is not valid: {exc}") from None

    _check_host(kind, parsed.raw_host.decode("ascii"))
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise kind.refuse("port", f"the {kind.noun}'s port {parsed.port} is out of range (1-65535)")
    return url
