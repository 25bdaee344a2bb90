"""Base URLs that may carry credentials: what is safe to show, what to send as auth, what is local.

Users paste URLs like `https://user:pass@gateway/v1?api_key=...` because their gateway's docs
say so. The secrets in them must reach the server and nothing else: `safe_url` is the only form
that goes into messages, logs, run.json and the dataset card, and `split_credentials` takes the
userinfo out so the client can send it as an Authorization header instead.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import parse_qsl, unquote, urlsplit, urlunsplit

MASK = "***"
# Query parameter names that hold secrets, compared lower-cased; names ending in one of
# _SECRET_SUFFIXES (`x-api-key`, `client_secret`, `refresh_token`) count too.
_SECRET_PARAMS = frozenset(
    {
        "api_key",
        "apikey",
        "api-key",
        "key",
        "token",
        "access_token",
        "auth",
        "authorization",
        "sig",
        "signature",
        "password",
        "passwd",
        "pwd",
        "secret",
        "credential",
        "credentials",
    }
)
_SECRET_SUFFIXES = ("_key", "-key", "_token", "-token", "_secret", "-secret", "_password", "-password")
_LOCAL_NAMES = ("localhost",)


def safe_url(url: str) -> str:
    """The URL for showing: no `user:password@`, secret-looking query values masked, no fragment.

    Never raises, even on a URL that does not parse, because it is what error messages about
    bad URLs print.
    """
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - a bad port means the userinfo may have been misread
    except ValueError:
        return _safe_unparsed(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, _mask_query(parts.query), ""))


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """`(url without userinfo, user, password)`, percent-decoded; None for what the URL lacks.

    The client sends these as auth rather than leaving them in a URL that may be logged.
    """
    parts = urlsplit(url)
    userinfo, at, host = parts.netloc.rpartition("@")
    if not at:
        return url, None, None
    user, _, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, unquote(user) or None, unquote(password) or None


def is_local(url: str) -> bool:
    """Whether the URL's host is this machine: `localhost`, a loopback IP or 0.0.0.0 / ::.

    A local server may run without an API key; a name that merely starts with `localhost`
    (`localhost.attacker.example`) is somebody else's.
    """
    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host in _LOCAL_NAMES:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback or ip.is_unspecified


def secret_query_values(url: str) -> list[str]:
    """The values of a URL's secret-looking query parameters, for redaction from messages."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return []
    return [value for name, value in parse_qsl(query) if value and _is_secret(name)]


def _is_secret(name: str) -> bool:
    lowered = unquote(name).strip().lower()
    return lowered in _SECRET_PARAMS or lowered.endswith(_SECRET_SUFFIXES)


def _mask_query(query: str) -> str:
    """Mask values by name and keep everything else byte for byte (no re-encoding)."""
    if not query:
        return query
    pairs = []
    for pair in query.split("&"):
        name, eq, _ = pair.partition("=")
        pairs.append(f"{name}={MASK}" if eq and _is_secret(name) else pair)
    return "&".join(pairs)


def _safe_unparsed(url: str) -> str:
    """For a URL urlsplit refuses: anything before the last `@` ahead of the query is userinfo."""
    head, _, query = url.partition("#")[0].partition("?")
    scheme, sep, rest = head.partition("://")
    if not sep:
        scheme, rest = "", head
    head = f"{scheme}{sep}{rest.rpartition('@')[2]}"
    return f"{head}?{_mask_query(query)}" if query else head
