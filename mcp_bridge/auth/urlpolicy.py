"""Which URLs the OAuth client may fetch or open, and the canonical resource URI.

Pure: no sockets, no DNS. Every URL a server hands us (`resource_metadata`,
`authorization_servers`, each AS endpoint, each redirect hop) is attacker-controlled
(MCP security best practices, "SSRF"), so it passes `UrlPolicy.check_fetch` before a byte
is sent, and the authorization URL passes `check_browser` before a browser sees it.

Theory of operation
- Scheme: `https` always; `http` only to a loopback host (RFC 8252 §8.3 development use,
  MCP Security Best Practices, SSRF) or with the explicit `allow_http` opt-in.
- Network zone of the host: judged on the host the HTTP client will connect to, after the
  IDNA mapping (NFKC, lowercase, the ideographic full stops as dots) that yarl (so aiohttp)
  and browsers apply: `１２７.０.０.１` and `10。0。0。1` are addresses, not names. Literal
  IPs are parsed with `ipaddress` (and the libc `inet_aton` forms such as `2130706433` or
  `0x7f.1`, which a resolver would also accept); `localhost` and `*.localhost` are
  loopback (RFC 6761 §6.3). A URL into loopback, private or link-local space is refused
  unless the MCP server itself lives in that same zone, or `allow_private` is set.
  Unspecified/multicast/reserved addresses are always refused, and so are hosts spelt with
  code points this Python's Unicode tables do not know.
- Hostnames are not resolved. A check at policy time would not bind the later connection
  (DNS rebinding makes it a TOCTOU), and pinning the connected peer would refuse the
  legitimate intranet authorization servers desktop users run under internal names. We
  block what a hostile document can do without owning DNS: literal IPs and localhost names.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
import stringprep
import unicodedata
from typing import NamedTuple
from urllib.parse import SplitResult, urlsplit, urlunsplit

from mcp_bridge.auth.errors import UrlRefused

__all__ = [
    "NetworkZone",
    "UrlPolicy",
    "canonical_resource",
    "check_browser_url",
    "network_zone",
    "normalized_host",
]

_BROWSER_FORBIDDEN_SCHEMES = frozenset({"javascript", "data", "file", "vbscript", "blob"})
# Far above any real authorization URL; below Windows' 32767-character command line.
MAX_BROWSER_URL_CHARS = 16_384
BACKSLASH = chr(92)
_TELL_OWNER = "Tell the MCP server's owner; mcp-bridge will not open such a URL"
# What IDNA reads as a label separator besides "." (RFC 3490 §3.1, UTS #46 §2.3): ideographic
# full stop, fullwidth full stop, halfwidth ideographic full stop.
_IDNA_DOTS = str.maketrans(dict.fromkeys("\u3002\uff0e\uff61", "."))


class NetworkZone(enum.Enum):
    PUBLIC = "public"  # a global address, or a hostname (not resolved, see module docstring)
    LOOPBACK = "loopback"  # 127.0.0.0/8, ::1, localhost
    PRIVATE = "private"  # 10/8, 172.16/12, 192.168/16, fc00::/7, 100.64/10 ...
    LINK_LOCAL = "link-local"  # 169.254/16 (cloud metadata lives here), fe80::/10
    FORBIDDEN = "forbidden"  # unspecified, multicast, reserved, unreadable: never a server


def _literal_ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        # "2130706433", "0x7f.1", "127.1": not IPs to `ipaddress`, but getaddrinfo resolves
        # them via inet_aton, so classify them as what they would connect to.
        if not host or not all(ch in "0123456789abcdefx." for ch in host):
            return None
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def normalized_host(host: str) -> str:
    """The host an IDNA-aware client (yarl, so aiohttp; a browser) connects to for `host`.

    Stdlib only, to keep this module light: what UTS #46 maps away (stringprep table B.1)
    goes, then NFKC with the current Unicode tables (IDNA 2003's nameprep uses Unicode 3.2,
    which misses digits yarl's `idna` knows), lowercase, and the IDNA dots become ".". Labels
    still not ASCII get their xn-- form; none of those can spell an address or `localhost`,
    so when the stdlib codec refuses one the mapped text is as good for judging the zone."""
    if host.isascii():
        return host.lower()
    kept = "".join(ch for ch in host if not stringprep.in_table_b1(ch))
    mapped = unicodedata.normalize("NFKC", kept).lower().translate(_IDNA_DOTS)
    if mapped.isascii():
        return mapped
    try:
        return mapped.encode("idna").decode("ascii")
    except UnicodeError:
        return mapped


def _unreadable(host: str) -> bool:
    """Code points this Python's Unicode tables do not assign. yarl's `idna`, with newer
    tables, may map them to digits (U+1CCF0 OUTLINED DIGIT ZERO is "0" since Unicode 16), so
    the host it connects to is unknowable here."""
    return not host.isascii() and any(unicodedata.category(ch) == "Cn" for ch in host)


def network_zone(host: str) -> NetworkZone:
    """The zone of a URL's host (as `urlsplit(...).hostname` gives it: no []), judged after
    the normalisation the HTTP client applies before it connects (`normalized_host`)."""
    if _unreadable(host):
        return NetworkZone.FORBIDDEN
    host = normalized_host(host).rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return NetworkZone.LOOPBACK
    address = _literal_ip(host)
    if address is None:
        return NetworkZone.PUBLIC
    if address.is_loopback:
        return NetworkZone.LOOPBACK
    if address.is_link_local:
        return NetworkZone.LINK_LOCAL
    if address.is_unspecified or address.is_multicast or address.is_reserved:
        return NetworkZone.FORBIDDEN
    if address.is_private or not address.is_global:
        return NetworkZone.PRIVATE
    return NetworkZone.PUBLIC


_NEVER_UNENCODED = frozenset('<>"`{}\\')


def _split(url: str, role: str) -> SplitResult:
    if not isinstance(url, str) or not url:
        raise UrlRefused(f"The {role} URL is missing or not a string")
    # Not only C0 and DEL: C1 controls, bidi overrides and Unicode spaces are never in a
    # real URL (it percent-encodes them), and a server-named URL ends up in messages.
    if any(ch.isspace() or not ch.isprintable() for ch in url):
        raise UrlRefused(
            f"The {role} URL contains whitespace, control or invisible formatting characters"
        )
    # RFC 3986 §2 leaves these out of URLs: one that holds them was mistyped or is a
    # template ({tenant}), and a backslash is read as a slash by some parsers, not others.
    excluded = sorted(set(url) & _NEVER_UNENCODED)
    if excluded:
        raise UrlRefused(
            f"The {role} URL {url!r} contains {' '.join(excluded)}, which a URL cannot "
            "hold as they are: percent-encode them, or check the URL (fill in a template)"
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise UrlRefused(f"The {role} URL {url!r} cannot be parsed ({exc})") from exc
    if not parts.hostname:
        raise UrlRefused(f"The {role} URL {url!r} has no host")
    return parts


def canonical_resource(url: str) -> str:
    """The RFC 8707 resource indicator for an MCP server URL (MCP Authorization,
    "Canonical Server URI"): absolute, no
    fragment, lowercase scheme and host, default port dropped, and no trailing slash on an
    empty path. A non-root path is kept as given: its trailing slash may be meaningful to
    the server, and the server compares the audience to the URL it is served at."""
    parts = _split(url, "MCP server")
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UrlRefused(f"The MCP server URL {url!r} is not an http(s) URL")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    if port is not None and (scheme, port) not in (("https", 443), ("http", 80)):
        host = f"{host}:{port}"
    path = "" if parts.path == "/" else parts.path
    return urlunsplit((scheme, host, path, parts.query, ""))


class UrlPolicy(NamedTuple):
    """The URL rules for one MCP server. Build it with `for_server`. (A NamedTuple, not a
    dataclass: `run`'s shim imports this module, and `dataclasses` costs it ~10 ms and
    ~1.4 MB at start.)"""

    server_url: str
    server_zone: NetworkZone
    allow_http: bool = False  # opt-in: plain http to non-loopback hosts (development)
    allow_private: bool = False  # opt-in: discovered URLs into any non-public zone

    @classmethod
    def for_server(
        cls, server_url: str, *, allow_http: bool = False, allow_private: bool = False
    ) -> UrlPolicy:
        """The policy for `server_url`; raises UrlRefused if the server URL itself breaks it."""
        parts = _split(server_url, "MCP server")
        policy = cls(server_url, network_zone(parts.hostname or ""), allow_http, allow_private)
        policy._check_scheme(parts, server_url, "MCP server")
        return policy

    def check_fetch(self, url: str, *, role: str) -> str:
        """Refuse (UrlRefused) a URL we are about to GET or POST; returns it unchanged.
        `role` names it in the message ("authorization server metadata", "redirect")."""
        parts = _split(url, role)
        self._check_scheme(parts, url, role)
        if parts.username is not None or parts.password is not None:
            raise UrlRefused(f"The {role} URL {url!r} carries credentials; refusing it")
        zone = network_zone(parts.hostname or "")
        if zone is NetworkZone.FORBIDDEN:
            raise UrlRefused(f"The {role} URL {url!r} points at a non-routable address")
        if (
            zone is not NetworkZone.PUBLIC
            and zone is not self.server_zone
            and not self.allow_private
        ):
            raise UrlRefused(
                f"The {role} URL {url!r} points into the {zone.value} network while the MCP "
                f"server is {self.server_zone.value}; refusing it (SSRF protection)",
                next_step="If this is intended, allow private networks for this server",
            )
        return url

    def check_browser(self, url: str) -> str:
        """`check_browser_url` under this policy's `allow_http`."""
        return check_browser_url(url, allow_http=self.allow_http)

    def _check_scheme(self, parts: SplitResult, url: str, role: str) -> None:
        scheme = parts.scheme.lower()
        if scheme == "https":
            return
        if scheme == "http":
            if self.allow_http or network_zone(parts.hostname or "") is NetworkZone.LOOPBACK:
                return
            raise UrlRefused(
                f"The {role} URL {url!r} is plain http; OAuth endpoints must use https",
                next_step="Use https, or pass --allow-http if this is a test setup",
            )
        raise UrlRefused(f"The {role} URL {url!r} has scheme {scheme!r}; only https is allowed")


def check_browser_url(url: str, *, allow_http: bool = False) -> str:
    """Return `url` if a browser may be sent there: https, or http to a loopback host (any http
    host with `allow_http`, the same opt-in as the URL policy's); no whitespace or control
    characters; no user:password@ part. Raises UrlRefused (an AuthError) otherwise, naming the
    reason (the URL came from a server, so it is treated as hostile; MCP Security Best
    Practices: only https authorization URLs, sanitized, never through a shell). Pure; used when
    the URL is built and again where it leaves the process for a browser."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("The authorization URL is empty", next_step=_TELL_OWNER)
    if len(url) > MAX_BROWSER_URL_CHARS:
        raise UrlRefused(
            f"The authorization URL is {len(url)} characters long; refusing to open it",
            next_step=_TELL_OWNER,
        )
    if any(ch.isspace() or not ch.isprintable() or ch == BACKSLASH for ch in url):
        raise UrlRefused(
            "The authorization URL contains whitespace, a backslash or control characters; "
            "refusing to open it",
            next_step=_TELL_OWNER,
        )
    scheme = url.split(":", 1)[0].lower()
    if scheme in _BROWSER_FORBIDDEN_SCHEMES:
        raise UrlRefused(
            f"The authorization server sent a {scheme}: URL as its login page; refusing to open it",
            next_step=_TELL_OWNER,
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise UrlRefused("The authorization URL cannot be parsed", next_step=_TELL_OWNER) from exc
    if parts.scheme.lower() not in ("https", "http") or not host:
        raise UrlRefused(
            f"The authorization URL has scheme {parts.scheme!r}; only https can be opened",
            next_step=_TELL_OWNER,
        )
    if parts.scheme.lower() == "http" and not (
        allow_http or network_zone(host) is NetworkZone.LOOPBACK
    ):
        raise UrlRefused(
            "The authorization URL is plain http to a non-loopback host; only https can be opened",
            next_step=_TELL_OWNER,
        )
    if parts.username is not None or parts.password is not None:
        # `https://trusted.example@evil.example/` reads as trusted and goes to evil.
        raise UrlRefused(
            "The authorization URL carries a user name before its host; refusing to open it",
            next_step=_TELL_OWNER,
        )
    return url
