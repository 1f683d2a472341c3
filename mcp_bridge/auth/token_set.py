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

__all__ = ["MAX_TOKEN_LIFETIME_S", "TokenSet", "parse_token_response"]

_MAX_TOKEN_CHARS = 64 * 1024
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
    token_type: str = "Bearer"
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds; None: the AS did not say
    scopes: tuple[str, ...] = ()
    quirks: AuthServerQuirks = field(default_factory=AuthServerQuirks, compare=False)

    def is_expired(self, now: float, *, margin_s: float = 0.0) -> bool:
        """True when the access token expires within `margin_s` of `now`."""
        return self.expires_at is not None and self.expires_at - margin_s <= now

    def authorization_header(self) -> str:
        """The `Authorization` value (RFC 6750 §2.1; MCP: never in a query string)."""
        return f"Bearer {self.access_token}"

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
                token_type=_text(doc.get("token_type", "Bearer")),
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


def parse_token_response(
    response: HttpResponse,
    *,
    issuer: str,
    resource: str,
    requested_scopes: tuple[str, ...],
    now: float,
) -> TokenSet:
    """The tokens in a successful token response (RFC 6749 §5.1), for `resource` from
    `issuer`; AuthResponseInvalid when it is unusable. Only Bearer tokens are usable here
    (RFC 6750); the type is compared case-insensitively (RFC 6749 §7.1: "bearer" and
    "Bearer" are the same type)."""
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
    token_type = doc.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise AuthResponseInvalid(
            f"The token response from {issuer} has token_type "
            f"{sanitize_remote_text(token_type, max_chars=30)!r}; only Bearer is supported",
            next_step="Tell the server's owner",
        )
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
        token_type="Bearer",
        refresh_token=refresh or None,
        expires_at=_expires_at(doc.get("expires_in"), now, issuer),
        scopes=scopes,
    )
