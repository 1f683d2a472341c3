"""The token endpoint (RFC 6749 §4.1.3, §6; RFC 8707; OAuth 2.1 §4.3) and revocation
(RFC 7009): steps that build the form POSTs and sort the answers. A successful answer is
read by token_set.parse_token_response.

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
and with DPoP, a 400 `use_dpop_nonce` (RFC 9449 §8)          -> a new proof with its nonce
"""

from __future__ import annotations

import base64
import re
from dataclasses import replace
from functools import partial
from typing import NoReturn
from urllib.parse import quote_plus

from mcp_bridge.auth.authorize import PendingAuthorization
from mcp_bridge.auth.client_assertion import CLIENT_ASSERTION_TYPE
from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.discovery import AuthServerQuirks, TokenBody
from mcp_bridge.auth.dpop_proofs import DpopProofs, post_with_proof
from mcp_bridge.auth.errors import (
    AuthError,
    AuthServerUnavailable,
    ClientRejected,
    LoginRequired,
    sanitize_remote_text,
)
from mcp_bridge.auth.http_step import HttpRequest, HttpResponse, Step, clamped, json_number
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.scopes import OPENID, scope_param
from mcp_bridge.auth.token_set import TokenSet, parse_token_response

__all__ = [
    "MAX_RETRY_AFTER_S",
    "client_authenticated_post",
    "exchange_code",
    "is_outage",
    "post_grant",
    "raise_token_endpoint_error",
    "refresh_tokens",
    "revoke_token",
    "token_error",
]

MAX_RETRY_AFTER_S = 3600.0  # a longer Retry-After is cut to this (_retry_after_s)


def client_authenticated_post(
    endpoint: str,
    client: ClientRegistration,
    form: list[tuple[str, str]],
    *,
    body: TokenBody = "form",
) -> HttpRequest:
    """A form POST to one of the AS's endpoints, carrying the client authentication the
    client registered (RFC 6749 §2.3.1): a Basic header, the secret in the form, a signed
    client assertion (RFC 7523 §2.2, a new one per request: client_assertion.py), or only
    `client_id` for a public client. Every grant and revocation sends its form this way;
    `body="json"` sends the same fields as one JSON object, for an AS that reads no form."""
    method = client.token_endpoint_auth_method
    headers: dict[str, str] = {}
    if method == "private_key_jwt":
        if client.assertions is None:
            raise AuthError(
                f"The client {client.client_id} authenticates to {client.issuer} with a "
                "private key, and none was given",
                next_step="Pass the key's file with --client-key-file",
            )
        # RFC 7523 §3: the assertion's `sub` names the client; the extension's example
        # sends no client_id beside it.
        assertion = client.assertions.assertion(client.client_id, client.issuer)
        form = [
            *form,
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion),
        ]
    elif method == "client_secret_basic" and client.client_secret is not None:
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
    endpoint: str,
    client: ClientRegistration,
    form: list[tuple[str, str]],
    quirks: AuthServerQuirks,
    dpop: DpopProofs | None = None,
) -> Step[tuple[HttpResponse, AuthServerQuirks]]:
    """POST `form` the way `quirks` say (with DPoP proofs when `dpop` is given:
    post_with_proof); when the body's kind was refused, the same request once more in the
    other kind. Returns the answer to act on and the quirks it was sent with. When both
    kinds are refused, the first answer is the one that tells."""

    def post(body: TokenBody) -> Step[HttpResponse]:
        make = partial(client_authenticated_post, endpoint, client, form, body=body)
        return post_with_proof(make, dpop)

    response = yield from post(quirks.token_body)
    if response.is_success or not _refuses_body(response, quirks.token_body):
        return response, quirks
    other = replace(quirks, token_body="json" if quirks.token_body == "form" else "form")
    retried = yield from post(other.token_body)
    if retried.is_success or not _refuses_body(retried, other.token_body):
        return retried, other
    return response, quirks


def post_grant(
    endpoint: str,
    client: ClientRegistration,
    form: list[tuple[str, str]],
    quirks: AuthServerQuirks,
    dpop: DpopProofs | None = None,
) -> Step[tuple[HttpResponse, AuthServerQuirks]]:
    """A grant's POST (`_send`), with RFC 8707 `resource` unless `quirks` leave it out; every
    grant goes out this way (the device grant's two requests too). Returns the answer and
    the quirks it was sent with, for the caller to keep on what it returns. An
    `invalid_target` answer to a request naming it gets the request once more without it:
    Microsoft Entra ID refuses any resource but its app's ID URI (AADSTS9010010) and binds
    the token to the app through `scope` instead. The token is still ours for one resource
    (it is only ever sent to that server): TokenSet.resource does not change."""
    without = [(name, value) for name, value in form if name != "resource"]
    sent = form if quirks.send_resource else without
    response, quirks = yield from _send(endpoint, client, sent, quirks, dpop)
    doc = response.json_or_none()
    refused = isinstance(doc, dict) and doc.get("error") == "invalid_target"
    if response.status == 400 and refused and len(sent) > len(without):
        response, quirks = yield from _send(
            endpoint, client, without, replace(quirks, send_resource=False), dpop
        )
    return response, quirks


def _retry_after_s(response: HttpResponse) -> float | None:
    """Retry-After in seconds (RFC 9110 §10.2.3; its HTTP-date form is not read), at most
    MAX_RETRY_AFTER_S: the token manager waits this long before it asks again, and a
    server's "come back in 30 years" must not stop refreshes until a restart."""
    seconds = json_number(response.header("Retry-After"))  # ASCII digits only, as RFC 9110
    return None if seconds is None else clamped(seconds, 0.0, MAX_RETRY_AFTER_S)


def token_error(response: HttpResponse) -> tuple[str | None, str]:
    """The OAuth `error` code of an error response (RFC 6749 §5.2), if it has one, and a
    sanitized line for messages: the code and its description, or the HTTP status."""
    doc = response.json_or_none()
    error = doc.get("error") if isinstance(doc, dict) else None
    description = doc.get("error_description") if isinstance(doc, dict) else None
    detail = sanitize_remote_text(error) or f"HTTP {response.status}"
    if description:
        detail += f": {sanitize_remote_text(description)}"
    return (error if isinstance(error, str) else None), detail


def is_outage(response: HttpResponse, error: str | None) -> bool:
    """An answer that says "later", not "no": 5xx, 429, temporarily_unavailable."""
    return response.status >= 500 or response.status == 429 or error == "temporarily_unavailable"


def raise_token_endpoint_error(response: HttpResponse, endpoint: str, what: str) -> NoReturn:
    """Raise the error the caller acts on for a non-2xx response from the token endpoint
    (RFC 6749 §5.2) or one shaped like it (revocation, device authorization); `what` names
    the endpoint in the message. The table at the top of this module says which error."""
    error, detail = token_error(response)
    if is_outage(response, error):
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


def exchange_code(
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    pending: PendingAuthorization,
    code: str,
    *,
    now: float,
    dpop: DpopProofs | None = None,
    use_id_token: bool = False,
) -> Step[TokenSet]:
    """Redeem a validated authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5) with the verifier,
    redirect URI and `resource` (MCP: on the token request too). Only after
    `validate_callback`. With `dpop`, the request carries a proof and the tokens may come
    back bound to its key (RFC 9449 §5). `use_id_token`: the ID token is to be the bearer
    (TokenSet.sending_id_token)."""
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
    endpoint = metadata.token_endpoint
    response, quirks = yield from post_grant(endpoint, client, form, pending.quirks, dpop)
    if not response.is_success:
        raise_token_endpoint_error(response, metadata.token_endpoint, "token endpoint")
    tokens = parse_token_response(
        response,
        issuer=metadata.issuer,
        resource=pending.resource,
        requested_scopes=pending.scopes,
        now=now,
        sent_dpop_proof=dpop is not None,
    )
    if use_id_token:
        tokens = tokens.sending_id_token(now)
    return replace(tokens, quirks=quirks)


def refresh_tokens(
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    tokens: TokenSet,
    *,
    now: float,
    scopes: tuple[str, ...] | None = None,
    dpop: DpopProofs | None = None,
) -> Step[TokenSet]:
    """Use `tokens.refresh_token` (RFC 6749 §6) for the same `resource` (RFC 8707 §2.2)
    and the granted scope (`scopes` to narrow it). The new set replaces the old; a reply
    without a refresh token keeps the old one (the AS did not rotate it). Tokens that send
    their ID token get a new one (`_with_id_token`). Raises LoginRequired when there is no
    refresh token at all. DPoP-bound tokens are refreshed with a proof of the same key
    (`dpop`, RFC 9449 §5: their refresh token is bound too); Bearer ones without, whatever
    `dpop` is."""
    if tokens.refresh_token is None:
        raise LoginRequired(
            "There is no refresh token to renew access with", next_step="Log in again"
        )
    if tokens.is_dpop and dpop is None:
        raise LoginRequired(
            "The DPoP key these tokens are bound to is gone", next_step="Log in again"
        )
    dpop = dpop if tokens.is_dpop else None
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
    if tokens.sends_id_token and OPENID not in requested:
        # OpenID Connect Core §12.1: the refresh answers with an ID token for `openid` only.
        requested = (*requested, OPENID)
    if (scope := scope_param(requested)) is not None:
        # §6: the granted scope or a narrower one; omitted means "as granted", yet Microsoft
        # Entra ID refuses a refresh without it (AADSTS90009), so it is always sent.
        form.append(("scope", scope))
    endpoint = metadata.token_endpoint
    response, quirks = yield from post_grant(endpoint, client, form, tokens.quirks, dpop)
    if not response.is_success:
        raise_token_endpoint_error(response, metadata.token_endpoint, "token endpoint")
    fresh = parse_token_response(
        response,
        issuer=tokens.issuer,
        resource=tokens.resource,
        requested_scopes=requested,
        now=now,
        sent_dpop_proof=dpop is not None,
    )
    fresh = replace(fresh, refresh_token=fresh.refresh_token or tokens.refresh_token, quirks=quirks)
    return _with_id_token(fresh, tokens, now) if tokens.sends_id_token else fresh


def _with_id_token(fresh: TokenSet, old: TokenSet, now: float) -> TokenSet:
    """A refresh's tokens for a login that sends its ID token. OpenID Connect Core §12.2
    lets the AS leave the ID token out of a refresh response. Then the old ID token is
    kept, but only until its own `exp` (it is what the server accepts, and it is still
    valid: sending it until then costs nothing), and the refresh token is dropped: this
    AS renews the access token, which is never sent, and not the ID token, so refreshing
    again would spend refresh tokens for nothing, each time sooner as the ID token nears
    its end. When it expires, the next request meets a 401, and a new sign-in (the only
    way to a new ID token here) follows."""
    if fresh.id_token is not None:
        return fresh.sending_id_token(now)
    return replace(
        fresh,
        id_token=old.id_token,
        sends_id_token=True,
        expires_at=old.expires_at,
        refresh_token=None,
    )


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
