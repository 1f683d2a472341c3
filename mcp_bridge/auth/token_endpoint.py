"""The token endpoint (RFC 6749 §4.1.3, §6; RFC 8707; OAuth 2.1 §4.3) and revocation
(RFC 7009): steps that build the form POSTs, and `TokenSet`, the parsed result.

Pure: clocks come in as `now` (epoch seconds). Error responses are sorted by what the
caller must do next:
    invalid_grant                       -> LoginRequired (the browser login again)
    invalid_client, 401                 -> ClientRejected (register again, then log in)
    5xx, 429, temporarily_unavailable   -> AuthServerUnavailable (retry later)
    anything else                       -> AuthError with the AS's sanitized error
Before that, an authorization server's known departures from these RFCs are met with one
retry, and the way that worked (AuthServerQuirks) rides on the TokenSet to the vault and
to the next grant (docs/oauth-in-the-wild.md §6):
    the form body refused (415, a 400 about the body, a 500)  -> the same request as JSON
    invalid_target with `resource` (RFC 8707 §2; Entra ID)    -> the same without `resource`
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field, replace
from typing import NoReturn
from urllib.parse import quote_plus

from mcp_bridge.auth.authorize import PendingAuthorization
from mcp_bridge.auth.discovery import AuthServerQuirks, TokenBody
from mcp_bridge.auth.errors import (
    AuthError,
    AuthResponseInvalid,
    AuthServerUnavailable,
    ClientRejected,
    LoginRequired,
    sanitize_remote_text,
)
from mcp_bridge.auth.http_step import (
    HttpRequest,
    HttpResponse,
    Step,
    clamped,
    json_number,
    shown_json,
    stored_time,
)
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.registration import ClientRegistration
from mcp_bridge.auth.scopes import scope_param

__all__ = [
    "MAX_RETRY_AFTER_S",
    "MAX_TOKEN_LIFETIME_S",
    "TokenSet",
    "client_authenticated_post",
    "exchange_code",
    "parse_token_response",
    "raise_token_endpoint_error",
    "refresh_tokens",
    "revoke_token",
]

_MAX_TOKEN_CHARS = 64 * 1024
MAX_TOKEN_LIFETIME_S = 365 * 24 * 3600.0  # a longer expires_in is cut to this (_expires_at)
MAX_RETRY_AFTER_S = 3600.0  # a longer Retry-After is cut to this (_retry_after_s)


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


def client_authenticated_post(
    endpoint: str,
    client: ClientRegistration,
    form: list[tuple[str, str]],
    *,
    body: TokenBody = "form",
) -> HttpRequest:
    """A form POST to one of the AS's endpoints, carrying the client authentication the
    client registered (RFC 6749 §2.3.1): a Basic header, the secret in the form, or only
    `client_id` for a public client. Every grant and revocation sends its form this way;
    `body="json"` sends the same fields as one JSON object, for an AS that reads no form."""
    method = client.token_endpoint_auth_method
    headers: dict[str, str] = {}
    if method == "client_secret_basic" and client.client_secret is not None:
        # §2.3.1: id and secret are form-urlencoded before the Basic encoding.
        pair = f"{quote_plus(client.client_id)}:{quote_plus(client.client_secret)}"
        basic = base64.b64encode(pair.encode()).decode("ascii")
        headers["Authorization"] = f"Basic {basic}"
    else:
        form = [*form, ("client_id", client.client_id)]
        if method == "client_secret_post" and client.client_secret is not None:
            form.append(("client_secret", client.client_secret))
    if body == "json":
        return HttpRequest.post_json(endpoint, dict(form), headers)
    return HttpRequest.post_form(endpoint, form, headers)


# A 400 whose text says this is what was wrong: the AS did not read the body at all. Its
# first complaint is then often the missing grant_type, which we did send.
_ABOUT_THE_BODY = re.compile(r"json|body|content.?type|media.?type|pars(e|ing)|grant_type", re.I)
_BODY_TEXT_CHARS = 1000


def _refuses_body(response: HttpResponse, sent: TokenBody) -> bool:
    """Whether the answer says the endpoint could not read a body of the kind `sent`:
    415 (RFC 9110 §15.5.16); a 400 `invalid_request`, or one with no OAuth error at all,
    that speaks of the body; or, to the RFC's form, a 500 that is no OAuth error, as a
    JSON-only parser crashing on a form answers (docs/oauth-in-the-wild.md §6). A 500 with
    an OAuth `error` read the request, and a 500 to JSON, which only an AS that took JSON
    before is sent, are outages like any other."""
    if response.status == 415:
        return True
    doc = response.json_or_none()
    error = doc.get("error") if isinstance(doc, dict) else None
    if response.status == 500:
        return sent == "form" and not isinstance(error, str)
    if response.status != 400 or error not in (None, "invalid_request"):
        return False
    text = response.body[:_BODY_TEXT_CHARS].decode("utf-8", "replace")
    return _ABOUT_THE_BODY.search(text) is not None


def _send(
    endpoint: str, client: ClientRegistration, form: list[tuple[str, str]], quirks: AuthServerQuirks
) -> Step[tuple[HttpResponse, AuthServerQuirks]]:
    """POST `form` the way `quirks` say; when the body's kind was refused, the same request
    once more in the other kind. Returns the answer to act on and the quirks it was sent
    with. When both kinds are refused, the first answer is the one that tells."""
    response = yield client_authenticated_post(endpoint, client, form, body=quirks.token_body)
    if response.is_success or not _refuses_body(response, quirks.token_body):
        return response, quirks
    other = replace(quirks, token_body="json" if quirks.token_body == "form" else "form")
    retried = yield client_authenticated_post(endpoint, client, form, body=other.token_body)
    if retried.is_success or not _refuses_body(retried, other.token_body):
        return retried, other
    return response, quirks


def _post_grant(
    endpoint: str, client: ClientRegistration, form: list[tuple[str, str]], quirks: AuthServerQuirks
) -> Step[tuple[HttpResponse, AuthServerQuirks]]:
    """A grant's POST (`_send`), with RFC 8707 `resource` unless `quirks` leave it out. An
    `invalid_target` answer to a request naming it gets the request once more without it:
    Microsoft Entra ID refuses any resource but its app's ID URI (AADSTS9010010) and binds
    the token to the app through `scope` instead. The token is still ours for one resource
    (it is only ever sent to that server): TokenSet.resource does not change."""
    without = [(name, value) for name, value in form if name != "resource"]
    sent = form if quirks.send_resource else without
    response, quirks = yield from _send(endpoint, client, sent, quirks)
    doc = response.json_or_none()
    refused = isinstance(doc, dict) and doc.get("error") == "invalid_target"
    if response.status == 400 and refused and len(sent) > len(without):
        response, quirks = yield from _send(
            endpoint, client, without, replace(quirks, send_resource=False)
        )
    return response, quirks


def _retry_after_s(response: HttpResponse) -> float | None:
    """Retry-After in seconds (RFC 9110 §10.2.3; its HTTP-date form is not read), at most
    MAX_RETRY_AFTER_S: the token manager waits this long before it asks again, and a
    server's "come back in 30 years" must not stop refreshes until a restart."""
    seconds = json_number(response.header("Retry-After"))  # ASCII digits only, as RFC 9110
    return None if seconds is None else clamped(seconds, 0.0, MAX_RETRY_AFTER_S)


def raise_token_endpoint_error(response: HttpResponse, endpoint: str, what: str) -> NoReturn:
    """Raise the error the caller acts on for a non-2xx response from the token endpoint
    (RFC 6749 §5.2) or one shaped like it (revocation, device authorization); `what` names
    the endpoint in the message. The table at the top of this module says which error."""
    doc = response.json_or_none()
    error = doc.get("error") if isinstance(doc, dict) else None
    description = doc.get("error_description") if isinstance(doc, dict) else None
    detail = sanitize_remote_text(error) or f"HTTP {response.status}"
    if description:
        detail += f": {sanitize_remote_text(description)}"
    if response.status >= 500 or response.status == 429 or error == "temporarily_unavailable":
        raise AuthServerUnavailable(
            f"The {what} at {endpoint} is unavailable ({detail})",
            next_step="Try again later",
            retry_after_s=_retry_after_s(response),
        )
    if error == "invalid_grant":
        raise LoginRequired(
            f"The authorization server no longer accepts this grant ({detail})",
            next_step="Log in again",
        )
    if error == "invalid_client" or (error is None and response.status == 401):
        raise ClientRejected(
            f"The authorization server does not accept this client any more ({detail})",
            next_step="Register the client again, then log in",
        )
    raise AuthError(
        f"The {what} at {endpoint} was refused ({detail})",
        next_step="Log in again; if it repeats, tell the server's owner",
    )


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


def exchange_code(
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    pending: PendingAuthorization,
    code: str,
    *,
    now: float,
) -> Step[TokenSet]:
    """Redeem a validated authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5) with the verifier,
    redirect URI and `resource` (MCP: on the token request too). Only after
    `validate_callback`."""
    if metadata.issuer != pending.issuer or client.client_id != pending.client_id:
        raise AuthError(
            "The code belongs to a login at another authorization server or client",
            next_step="Start the login again",
        )
    form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", pending.redirect_uri),
        ("code_verifier", pending.code_verifier),
        ("resource", pending.resource),
    ]
    response, quirks = yield from _post_grant(metadata.token_endpoint, client, form, pending.quirks)
    if not response.is_success:
        raise_token_endpoint_error(response, metadata.token_endpoint, "token endpoint")
    tokens = parse_token_response(
        response,
        issuer=metadata.issuer,
        resource=pending.resource,
        requested_scopes=pending.scopes,
        now=now,
    )
    return replace(tokens, quirks=quirks)


def refresh_tokens(
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    tokens: TokenSet,
    *,
    now: float,
    scopes: tuple[str, ...] | None = None,
) -> Step[TokenSet]:
    """Use `tokens.refresh_token` (RFC 6749 §6) for the same `resource` (RFC 8707 §2.2)
    and the granted scope (`scopes` to narrow it). The new set replaces the old; a reply
    without a refresh token keeps the old one (the AS did not rotate it). Raises
    LoginRequired when there is no refresh token at all."""
    if tokens.refresh_token is None:
        raise LoginRequired(
            "There is no refresh token to renew access with", next_step="Log in again"
        )
    if not client.is_for(tokens.issuer) or metadata.issuer != tokens.issuer:
        raise AuthError(
            f"These tokens were issued by {tokens.issuer}, not {metadata.issuer}",
            next_step="Log in again",
        )
    form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", tokens.refresh_token),
        ("resource", tokens.resource),
    ]
    requested = scopes if scopes is not None else tokens.scopes
    if (scope := scope_param(requested)) is not None:
        # §6: the granted scope or a narrower one; omitted means "as granted", yet Microsoft
        # Entra ID refuses a refresh without it (AADSTS90009), so it is always sent.
        form.append(("scope", scope))
    response, quirks = yield from _post_grant(metadata.token_endpoint, client, form, tokens.quirks)
    if not response.is_success:
        raise_token_endpoint_error(response, metadata.token_endpoint, "token endpoint")
    fresh = parse_token_response(
        response,
        issuer=tokens.issuer,
        resource=tokens.resource,
        requested_scopes=requested,
        now=now,
    )
    return replace(fresh, refresh_token=fresh.refresh_token or tokens.refresh_token, quirks=quirks)


def revoke_token(
    metadata: AuthServerMetadata, client: ClientRegistration, tokens: TokenSet
) -> Step[bool]:
    """RFC 7009 revocation for logout: the refresh token if there is one (revoking it
    normally ends the access token too, §2.1), else the access token. True when the AS
    confirmed; False when it has no revocation endpoint or does not support the type.
    The caller deletes its copy whatever this returns."""
    endpoint = metadata.revocation_endpoint
    if endpoint is None:
        return False
    if tokens.refresh_token is not None:
        form = [("token", tokens.refresh_token), ("token_type_hint", "refresh_token")]
    else:
        form = [("token", tokens.access_token), ("token_type_hint", "access_token")]
    # RFC 7009 §2.1 sends a form too: the token endpoint's quirk is taken to hold here.
    response, _ = yield from _send(endpoint, client, form, tokens.quirks)
    if response.is_success:
        return True
    doc = response.json_or_none()
    if isinstance(doc, dict) and doc.get("error") == "unsupported_token_type":
        return False
    raise_token_endpoint_error(response, endpoint, "revocation endpoint")
