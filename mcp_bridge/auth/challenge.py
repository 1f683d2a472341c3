"""`WWW-Authenticate` parsing (RFC 9110 §11.6.1, RFC 6750 §3, RFC 9449 §7.1) into a
`BearerChallenge`.

Pure. The header is server-controlled and read on every 401/403, so the parser never
raises: whatever is malformed is dropped (logged at debug) and the rest is kept.

Grammar handled, RFC 9110 §11.6.1 and §5.6:
    WWW-Authenticate = #challenge               several challenges, comma-separated
    challenge  = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
    auth-param = token BWS "=" BWS ( token / quoted-string )
    quoted-string: DQUOTE, `\\` escapes any octet (quoted-pair), DQUOTE
Scheme and parameter names are case-insensitive. Unquoted values are read up to the next
comma or space, slightly wider than `token`: servers do send bare URLs
(`resource_metadata=https://...`), and refusing them helps nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["BearerChallenge", "Challenge", "parse_www_authenticate"]

log = logging.getLogger(__name__)

_TOKEN68_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~+/")
_TCHARS = frozenset("!#$%&'*+-.^_`|~abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_SPACE = " \t"


@dataclass(frozen=True, slots=True)
class Challenge:
    """One challenge: its scheme (lowercased), auth-params (names lowercased) or token68."""

    scheme: str
    params: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    token68: str | None = None


@dataclass(slots=True)
class _Draft:
    """A challenge while its parameters are still being read."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)
    token68: str | None = None


@dataclass(slots=True)
class _Scanner:
    text: str
    pos: int = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, chars: str) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1

    def take_while(self, chars: frozenset[str]) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in chars:
            self.pos += 1
        return self.text[start : self.pos]

    def take_bare_value(self) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in ", \t":
            self.pos += 1
        return self.text[start : self.pos]

    def take_quoted(self) -> str | None:
        """A quoted-string starting at the opening quote; None if it never closes."""
        self.pos += 1  # the opening DQUOTE
        out: list[str] = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            self.pos += 1
            if ch == '"':
                return "".join(out)
            if ch == "\\" and self.pos < len(self.text):
                ch = self.text[self.pos]
                self.pos += 1
            out.append(ch)
        return None

    def token68_ahead(self) -> str | None:
        """If a token68 followed by end-of-challenge starts here, consume and return it."""
        start = self.pos
        body = self.take_while(_TOKEN68_CHARS)
        padding = self.take_while(frozenset("="))
        self.skip(_SPACE)
        if body and (self.at_end() or self.peek() == ","):
            return body + padding
        self.pos = start
        return None


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Every challenge in one `WWW-Authenticate` value, in order (tolerant, see module doc)."""
    drafts = _parse(header)
    return [Challenge(d.scheme, MappingProxyType(d.params), d.token68) for d in drafts]


def _parse(header: str) -> list[_Draft]:
    scanner = _Scanner(header)
    challenges: list[_Draft] = []
    current: _Draft | None = None
    while True:
        scanner.skip(_SPACE + ",")
        if scanner.at_end():
            return challenges
        name_start = scanner.pos
        name = scanner.take_while(_TCHARS)
        if not name:
            log.debug(
                "WWW-Authenticate: unexpected %r at %d, ignoring the rest",
                scanner.peek(),
                name_start,
            )
            return challenges
        scanner.skip(_SPACE)
        if current is not None and scanner.peek() == "=":
            scanner.pos += 1
            scanner.skip(_SPACE)
            if scanner.peek() == '"':
                value = scanner.take_quoted()
                if value is None:
                    log.debug("WWW-Authenticate: unterminated quoted-string for %r", name)
                    return challenges
            else:
                value = scanner.take_bare_value()
            key = name.lower()
            if key in current.params:
                log.debug("WWW-Authenticate: duplicate parameter %r, keeping the first", key)
            else:
                current.params[key] = value
            continue
        # Not `name=`: `name` is the scheme of a new challenge (RFC 9110: a comma separates
        # challenges as well as parameters; only a following "=" tells them apart).
        current = _Draft(scheme=name.lower())
        challenges.append(current)
        if not scanner.at_end() and scanner.peek() != ",":
            current.token68 = scanner.token68_ahead()


@dataclass(frozen=True, slots=True)
class BearerChallenge:
    """The challenge of a 401/403 (RFC 6750 §3, RFC 9728 §5.1, MCP scope challenge): the
    Bearer one, or the DPoP one (RFC 9449 §7.1) when the resource offers only that; its
    parameters read the same. `dpop_algs` is None when no DPoP challenge came, else the
    algorithms it names (empty: it named none); `dpop_error` is the DPoP challenge's own
    error (`use_dpop_nonce`: retry with the nonce just sent, §9)."""

    error: str | None = None  # invalid_token, insufficient_scope, invalid_request
    error_description: str | None = None
    scope: tuple[str, ...] = ()  # authoritative for this operation (MCP)
    resource_metadata: str | None = None  # RFC 9728 §5.1: the PRM URL to fetch first
    realm: str | None = None
    dpop_algs: tuple[str, ...] | None = None
    dpop_error: str | None = None
    offers_bearer: bool = True

    @classmethod
    def from_header(cls, header: str | None) -> BearerChallenge | None:
        """The Bearer (else DPoP) challenge in the header, or None when there is neither."""
        if not header:
            return None
        challenges = parse_www_authenticate(header)
        bearer = next((c for c in challenges if c.scheme == "bearer"), None)
        dpop = next((c for c in challenges if c.scheme == "dpop"), None)
        chosen = bearer or dpop
        if chosen is None:
            return None
        params = chosen.params
        return cls(
            error=params.get("error"),
            error_description=params.get("error_description"),
            scope=tuple(params.get("scope", "").split()),
            resource_metadata=params.get("resource_metadata") or None,
            realm=params.get("realm"),
            dpop_algs=None if dpop is None else tuple(dpop.params.get("algs", "").split()),
            dpop_error=None if dpop is None else dpop.params.get("error"),
            offers_bearer=bearer is not None,
        )

    @property
    def is_insufficient_scope(self) -> bool:
        """A 403 step-up request (RFC 6750 §3.1, MCP "Step-Up Authorization Flow")."""
        return self.error == "insufficient_scope"

    @property
    def wants_nonce(self) -> bool:
        """The resource refused a DPoP proof for its missing or old nonce (RFC 9449 §9)."""
        return self.dpop_error == "use_dpop_nonce"
