"""`TokenSet`, the tokens one grant issued, and `parse_token_response`, which reads them
out of a successful token response (RFC 6749 §5.1). Every grant (code, refresh, device)
ends here, and the vault stores what it returns.

The bearer is the access token, or with `--use-id-token` the OpenID Connect ID token: some
resource servers behind an OIDC provider take only that (AWS Cognito issues access tokens
without an audience, docs/oauth-in-the-wild.md §7). Its lifetime is then the ID token's own
`exp`, read from the JWT (`id_token_expires_at`).

Pure: clocks come in as `now` (epoch seconds).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field, replace

from mcp_bridge.auth.discovery import AuthServerQuirks
from mcp_bridge.auth.errors import AuthResponseInvalid, sanitize_remote_text
from mcp_bridge.auth.http_step import HttpResponse, clamped, json_number, shown_json, stored_time

__all__ = [
    "BEARER",
    "DPOP",
    "MAX_TOKEN_LIFETIME_S",
    "TokenSet",
    "id_token_expires_at",
    "parse_token_response",
]

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
    (auth_records.py).

    `id_token`: the OpenID Connect ID token of the response, if it had one. With
    `sends_id_token` it is the bearer and `expires_at` is its `exp`; otherwise it is held in
    memory only (a fresh login's diagnosis asks whether there was one) and never stored:
    it names the user, and nothing reads it back."""

    access_token: str = field(repr=False)
    issuer: str
    resource: str
    token_type: str = BEARER  # or DPOP
    refresh_token: str | None = field(default=None, repr=False)
    expires_at: float | None = None  # epoch seconds, of the bearer; None: the AS did not say
    scopes: tuple[str, ...] = ()
    quirks: AuthServerQuirks = field(default_factory=AuthServerQuirks, compare=False)
    id_token: str | None = field(default=None, repr=False)
    sends_id_token: bool = False

    def __post_init__(self) -> None:
        if self.sends_id_token and self.id_token is None:
            raise ValueError("sends_id_token without an id_token")

    @property
    def bearer_token(self) -> str:
        """The token the resource server is sent: the ID token or the access token."""
        return self.id_token if self.sends_id_token and self.id_token else self.access_token

    def is_expired(self, now: float, *, margin_s: float = 0.0) -> bool:
        """True when the bearer expires within `margin_s` of `now`."""
        return self.expires_at is not None and self.expires_at - margin_s <= now

    @property
    def is_dpop(self) -> bool:
        """Bound to the server's DPoP key (RFC 9449 §5: the AS said `token_type` DPoP): each
        request needs a proof, and a refresh of them too."""
        return self.token_type == DPOP

    def authorization_header(self) -> str:
        """The `Authorization` value (RFC 6750 §2.1, RFC 9449 §7.1; MCP: never in a query
        string): the scheme is the token type. An ID token is a plain Bearer token: no AS
        binds one to a DPoP key."""
        if self.sends_id_token and self.id_token:
            return f"{BEARER} {self.id_token}"
        return f"{self.token_type} {self.access_token}"

    def sending_id_token(self, now: float) -> TokenSet:
        """These tokens with the ID token as the bearer (`--use-id-token`), expiring when it
        does (its `exp`; the access token's `expires_in` when no `exp` can be read).
        AuthResponseInvalid when the response had no ID token, or one already expired."""
        if self.id_token is None:
            raise AuthResponseInvalid(
                f"The token response from {self.issuer} has no id_token, which "
                "--use-id-token sends to the server",
                next_step="Check that the client may use the openid scope at the "
                "authorization server, or run without --use-id-token",
            )
        expires_at = id_token_expires_at(self.id_token, now=now, issuer=self.issuer)
        return replace(
            self,
            sends_id_token=True,
            expires_at=self.expires_at if expires_at is None else expires_at,
        )

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
        if self.sends_id_token:
            doc["id_token"] = self.id_token
            doc["sends_id_token"] = True
        return doc

    @classmethod
    def from_json(cls, doc: object) -> TokenSet:
        """Read a vault record back; AuthResponseInvalid when it is not one of ours."""
        try:
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            refresh = doc.get("refresh_token")
            expires = doc.get("expires_at")
            id_token = doc.get("id_token")
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
                id_token=None if id_token is None else _text(id_token),
                sends_id_token=doc.get("sends_id_token") is True,
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


def id_token_expires_at(token: str, *, now: float, issuer: str) -> float | None:
    """When an ID token expires: its `exp` claim (OpenID Connect Core §2, seconds since
    1970), read from the JWT payload WITHOUT checking the signature. That is safe because it
    is only used to time the refresh: the resource server the token goes to checks it, and
    a false `exp` costs no more than an early refresh or a 401 that leads to one. None when
    it cannot be read (not a three-part JWT, a payload that is no JSON object, no numeric
    `exp`); a time past MAX_TOKEN_LIFETIME_S from now is cut to that. An `exp` already
    past is refused: the token would be refreshed on every request."""
    parts = token.split(".")
    if len(parts) != 3:
        return None  # an encrypted (five-part) or opaque token: nothing to read
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, RecursionError):  # bad base64 or UTF-8, not JSON, nested too deep
        return None
    exp = json_number(claims.get("exp")) if isinstance(claims, dict) else None
    if exp is None:
        return None
    if not exp > now:
        raise AuthResponseInvalid(
            f"The ID token from {issuer} expired before it arrived (exp {shown_json(exp)}, "
            "by this computer's clock)",
            next_step="Check this computer's clock; if it is right, tell the server's owner",
        )
    return clamped(exp, now, now + MAX_TOKEN_LIFETIME_S)


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
    # OpenID Connect Core §3.1.3.3: an ID token beside the access token when `openid` was
    # asked for. A malformed one is as good as none (TokenSet.sending_id_token says so
    # when it is needed).
    id_token = doc.get("id_token")
    if not isinstance(id_token, str) or not 0 < len(id_token) <= _MAX_TOKEN_CHARS:
        id_token = None
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
        id_token=id_token,
    )
