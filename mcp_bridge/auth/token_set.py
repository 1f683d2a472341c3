"""`TokenSet`, the tokens one grant issued, and `parse_token_response`, which reads them
out of a successful token response (RFC 6749 §5.1). Every grant (code, refresh, device)
ends here, and the vault stores what it returns.

Pure: clocks come in as `now` (epoch seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcp_bridge.auth.discovery import AuthServerQuirks
from mcp_bridge.auth.errors import AuthResponseInvalid, sanitize_remote_text
from mcp_bridge.auth.http_step import HttpResponse, clamped, json_number, shown_json, stored_time

__all__ = ["BEARER", "DPOP", "MAX_TOKEN_LIFETIME_S", "TokenSet", "parse_token_response"]

_MAX_TOKEN_CHARS = 64 * 1024
BEARER = "Bearer"
DPOP = "DPoP"
MAX_TOKEN_LIFETIME_S = 365 * 24 * 3600.0  # a longer expires_in is cut to this (_expires_at)


@dataclass(frozen=True, slots=True)
class TokenSet:
    """Tokens from one grant, with what they are for: `issuer` issued them for `resource` (MCP:
    a client sends a server only tokens its AS issued for it). Secrets are hidden from repr.
    `quirks`: how the grant that issued them was sent, where the next grant starts; the vault
    keeps them with the issuer's client registration, not in the token record
    (auth_records.py)."""

    access_token: str = field(repr=False)
    issuer: str
    resource: str
    token_type: str = BEARER  # or DPOP
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds; None: the AS did not say
    scopes: tuple[str, ...] = ()
    quirks: AuthServerQuirks = field(default_factory=AuthServerQuirks, compare=False)

    def is_expired(self, now: float, *, margin_s: float = 0.0) -> bool:
        """True when the access token expires within `margin_s` of `now`."""
        return self.expires_at is not None and self.expires_at - margin_s <= now

    @property
    def is_dpop(self) -> bool:
        """Bound to the server's DPoP key (RFC 9449 §5: the AS said `token_type` DPoP): each
        request needs a proof, and a refresh of them too."""
        return self.token_type == DPOP

    def authorization_header(self) -> str:
        """The `Authorization` value (RFC 6750 §2.1, RFC 9449 §7.1; MCP: never in a query
        string): the scheme is the token type."""
        return f"{self.token_type} {self.access_token}"

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "access_token": self.access_token,
            "issuer": self.issuer,
            "resource": self.resource,
            "token_type": self.token_type,
            "scopes": list(self.scopes),
        }
        if self.refresh_token is not None:
            doc["refresh_token"] = self.refresh_token
        if self.expires_at is not None:
            doc["expires_at"] = self.expires_at
        return doc

    @classmethod
    def from_json(cls, doc: object) -> TokenSet:
        """Read a vault record back; AuthResponseInvalid when it is not one of ours."""
        try:
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            refresh = doc.get("refresh_token")
            expires = doc.get("expires_at")
            scopes = doc.get("scopes", [])
            if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
                raise TypeError("scopes")
            return cls(
                access_token=_text(doc["access_token"]),
                issuer=_text(doc["issuer"]),
                resource=_text(doc["resource"]),
                token_type=_token_type(_text(doc.get("token_type", BEARER))),
                refresh_token=None if refresh is None else _text(refresh),
                expires_at=None if expires is None else stored_time(expires),
                scopes=tuple(scopes),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthResponseInvalid(
                "The stored tokens are damaged", next_step="Log in again"
            ) from exc


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _token_type(value: str) -> str:
    """The type's own spelling (RFC 6749 §7.1 compares types case-insensitively)."""
    for known in (BEARER, DPOP):
        if value.lower() == known.lower():
            return known
    raise ValueError("not a token type we use")


def _expires_at(value: object, now: float, issuer: str) -> float | None:
    """When the access token expires, from `expires_in` (RFC 6749 §5.1: its lifetime in
    seconds, RECOMMENDED). None only when the AS did not say (absent, or null as some
    serializers write an absent field). A lifetime past MAX_TOKEN_LIFETIME_S is cut to it:
    a refresh a year on costs nothing, and "for ever" would keep a token the AS may revoke.
    Zero, negative, NaN or not a number is refused, never read as "does not expire": such a
    token would be expired on arrival, and refreshing it would repeat on every request."""
    if value is None:
        return None
    lifetime = json_number(value)
    if lifetime is None or not lifetime > 0:
        raise AuthResponseInvalid(
            f"The token response from {issuer} has expires_in {shown_json(value)}; "
            "RFC 6749 §5.1 wants the access token's lifetime, a positive number of seconds",
            next_step="Tell the server's owner",
        )
    return now + clamped(lifetime, 0.0, MAX_TOKEN_LIFETIME_S)


def _issued_type(value: object, issuer: str, sent_dpop_proof: bool) -> str:
    try:
        token_type = _token_type(_text(value))
    except (TypeError, ValueError):
        raise AuthResponseInvalid(
            f"The token response from {issuer} has token_type "
            f"{sanitize_remote_text(value, max_chars=30)!r}; only Bearer and DPoP are supported",
            next_step="Tell the server's owner",
        ) from None
    if token_type == DPOP and not sent_dpop_proof:
        raise AuthResponseInvalid(
            f"The token response from {issuer} has token_type DPoP, but the request carried "
            "no DPoP proof: the token is bound to no key of ours (RFC 9449 §5)",
            next_step="Tell the server's owner",
        )
    return token_type


def parse_token_response(
    response: HttpResponse,
    *,
    issuer: str,
    resource: str,
    requested_scopes: tuple[str, ...],
    now: float,
    sent_dpop_proof: bool = False,
) -> TokenSet:
    """The tokens in a successful token response (RFC 6749 §5.1), for `resource` from
    `issuer`; AuthResponseInvalid when it is unusable. Bearer tokens (RFC 6750) are usable,
    and DPoP-bound ones (RFC 9449 §5) when the request carried a proof (`sent_dpop_proof`):
    a token bound to a key we never showed could not be used. A proof answered with a
    Bearer token is an AS that does not do DPoP (it ignores the header, §5): the token is
    used as a bearer. Types compare case-insensitively (RFC 6749 §7.1)."""
    doc = response.json(what="token response")
    if not isinstance(doc, dict):
        raise AuthResponseInvalid(
            f"The token response from {response.url or issuer} is not a JSON object",
            next_step="Tell the server's owner",
        )
    access = doc.get("access_token")
    if not isinstance(access, str) or not access or len(access) > _MAX_TOKEN_CHARS:
        raise AuthResponseInvalid(
            f"The token response from {issuer} has no usable access_token",
            next_step="Tell the server's owner",
        )
    token_type = _issued_type(doc.get("token_type"), issuer, sent_dpop_proof)
    refresh = doc.get("refresh_token")
    if refresh is not None and (not isinstance(refresh, str) or len(refresh) > _MAX_TOKEN_CHARS):
        raise AuthResponseInvalid(
            f"The token response from {issuer} has a malformed refresh_token",
            next_step="Tell the server's owner",
        )
    scope = doc.get("scope")
    # RFC 6749 §5.1: an omitted scope means the requested one was granted.
    scopes = tuple(scope.split()) if isinstance(scope, str) else requested_scopes
    return TokenSet(
        access_token=access,
        issuer=issuer,
        resource=resource,
        token_type=token_type,
        refresh_token=refresh or None,
        expires_at=_expires_at(doc.get("expires_in"), now, issuer),
        scopes=scopes,
    )
