"""The grants that need no browser, as steps (http_step.py): the client credentials grant
(OAuth 2.1 §4.2; MCP's OAuth Client Credentials extension) and enterprise-managed
authorization (MCP's extension of that name: an RFC 8693 token exchange at the
organisation's identity provider for an Identity Assertion JWT Authorization Grant, the
ID-JAG, redeemed at the MCP server's authorization server as an RFC 7523 JWT bearer
grant). Pure: the clock comes in as `now`; files are read by machine_login.py.

Each refusal is turned into what the user must fix, named by flag; outages (5xx, 429)
are the token endpoint's usual AuthServerUnavailable, so the token manager backs off.
"""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import NoReturn

from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.discovery import AuthServerQuirks
from mcp_bridge.auth.dpop_proofs import DpopProofs
from mcp_bridge.auth.errors import (
    AuthError,
    AuthResponseInvalid,
    ClientRejected,
    LoginRequired,
    sanitize_remote_text,
)
from mcp_bridge.auth.http_step import HttpResponse, Step
from mcp_bridge.auth.jws import unverified_claims
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.scopes import scope_param
from mcp_bridge.auth.token_endpoint import (
    is_outage,
    post_grant,
    raise_token_endpoint_error,
    token_error,
)
from mcp_bridge.auth.token_set import TokenSet, parse_token_response

__all__ = [
    "CLIENT_CREDENTIALS_GRANT",
    "ID_JAG_PROFILE",
    "ID_JAG_TOKEN_TYPE",
    "ID_TOKEN_TYPE",
    "JWT_BEARER_GRANT",
    "TOKEN_EXCHANGE_GRANT",
    "check_id_token",
    "redeem_id_jag",
    "request_client_credentials",
    "request_id_jag",
]

CLIENT_CREDENTIALS_GRANT = "client_credentials"
TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 §2.1
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"  # RFC 8693 §3
ID_JAG_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_JAG_PROFILE = "urn:ietf:params:oauth:grant-profile:id-jag"  # in AS metadata
_MAX_ASSERTION_CHARS = 64 * 1024


def _credentials_fix(client: ClientRegistration, flag: str = "--client-id") -> str:
    if client.token_endpoint_auth_method == "private_key_jwt":
        return (
            f"Check {flag} and that the public half of the key file is the one registered "
            "for it; if the server says the assertion expired, check this machine's clock"
        )
    return f"Check {flag} and its secret"


def _grant_form(
    grant_type: str, resource: str, scopes: tuple[str, ...], *extra: tuple[str, str]
) -> list[tuple[str, str]]:
    form = [("grant_type", grant_type), *extra, ("resource", resource)]
    if (scope := scope_param(scopes)) is not None:
        form.append(("scope", scope))
    return form


def _refused(
    response: HttpResponse,
    endpoint: str,
    client: ClientRegistration,
    *,
    what: str,
    grant_fix: str,
    client_flag: str = "--client-id",
) -> NoReturn:
    """Raise what a refused machine grant means. invalid_client: the credentials
    (ClientRejected); invalid_scope: the scopes; unauthorized_client and
    unsupported_grant_type: the AS does not allow this grant for this client. Anything
    else, outages included, as any token endpoint error."""
    error, detail = token_error(response)
    if is_outage(response, error):
        raise_token_endpoint_error(response, endpoint, "token endpoint")
    where = client.issuer
    if error == "invalid_client" or (error is None and response.status == 401):
        raise ClientRejected(
            f"{where} refused the credentials of client {client.client_id} ({detail})",
            next_step=_credentials_fix(client, client_flag),
        )
    if error == "invalid_scope":
        raise AuthError(
            f"{where} refused the scopes asked for {what} ({detail})",
            next_step="Pass --scope with scopes this client may have",
        )
    if error in ("unauthorized_client", "unsupported_grant_type"):
        raise AuthError(
            f"{where} does not let client {client.client_id} use {what} ({detail})",
            next_step=grant_fix,
        )
    raise AuthError(f"{where} refused {what} ({detail})", next_step=grant_fix)


def request_client_credentials(
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    *,
    resource: str,
    scopes: tuple[str, ...],
    quirks: AuthServerQuirks,
    now: float,
    dpop: DpopProofs | None = None,
) -> Step[TokenSet]:
    """The client credentials grant (OAuth 2.1 §4.2) for `resource` (RFC 8707, as every
    MCP token request), the client authenticated as registered: a secret, or a signed
    assertion (the extension's recommended way). No refresh token is expected: the grant
    is simply made again. With `dpop`, a proof asks for tokens bound to its key (RFC 9449)."""
    form = _grant_form(CLIENT_CREDENTIALS_GRANT, resource, scopes)
    endpoint = metadata.token_endpoint
    response, quirks = yield from post_grant(endpoint, client, form, quirks, dpop)
    if not response.is_success:
        _refused(
            response,
            metadata.token_endpoint,
            client,
            what="the client credentials grant",
            grant_fix="Ask the authorization server's administrator to allow the client "
            "credentials grant for this client, or leave out --grant",
        )
    return _issued(response, metadata, resource, scopes, now, quirks, dpop)


def _issued(
    response: HttpResponse,
    metadata: AuthServerMetadata,
    resource: str,
    scopes: tuple[str, ...],
    now: float,
    quirks: AuthServerQuirks,
    dpop: DpopProofs | None,
) -> TokenSet:
    """The tokens of a grant's successful answer, with the quirks it was sent with."""
    tokens = parse_token_response(
        response,
        issuer=metadata.issuer,
        resource=resource,
        requested_scopes=scopes,
        now=now,
        sent_dpop_proof=dpop is not None,
    )
    return replace(tokens, quirks=quirks)


def check_id_token(text: str, *, source: str, now: float) -> str:
    """The ID token read from `source` (surrounding whitespace dropped), if it is a JWT
    that has not expired by its own `exp`; LoginRequired otherwise. Its signature is the
    identity provider's to check: this only spares a round trip and says what to do."""
    token = text.strip()
    claims = unverified_claims(token)
    fix = f"Sign in to your identity provider again and write the new ID token to {source}"
    if claims is None:
        raise LoginRequired(f"{source} does not hold an ID token (a JWT)", next_step=fix)
    expires = claims.get("exp")
    if isinstance(expires, int | float) and not isinstance(expires, bool) and expires <= now:
        when = datetime.datetime.fromtimestamp(expires, datetime.UTC).isoformat(timespec="seconds")
        raise LoginRequired(f"The ID token in {source} expired at {when}", next_step=fix)
    return token


def request_id_jag(
    idp: AuthServerMetadata,
    idp_client: ClientRegistration,
    *,
    id_token: str,
    audience: str,
    resource: str,
    scopes: tuple[str, ...],
) -> Step[str]:
    """Exchange the user's ID token at the identity provider for an ID-JAG for the
    authorization server `audience` (its issuer identifier: the extension's MUST) and the
    MCP server `resource` (RFC 8693 §2.1, Identity Assertion Authorization Grant §4.3).
    The answer must say it issued an ID-JAG (`issued_token_type`); an ID-JAG naming
    another audience or resource is refused here, before it is sent anywhere."""
    form = _grant_form(
        TOKEN_EXCHANGE_GRANT,
        resource,
        scopes,
        ("requested_token_type", ID_JAG_TOKEN_TYPE),
        ("audience", audience),
        ("subject_token", id_token),
        ("subject_token_type", ID_TOKEN_TYPE),
    )
    endpoint = idp.token_endpoint
    response, _ = yield from post_grant(endpoint, idp_client, form, AuthServerQuirks())
    if not response.is_success:
        _idp_refused(response, endpoint, idp_client, audience)
    doc = response.json(what="token exchange response")
    jag = doc.get("access_token") if isinstance(doc, dict) else None
    issued = doc.get("issued_token_type") if isinstance(doc, dict) else None
    if issued != ID_JAG_TOKEN_TYPE or not isinstance(jag, str):
        raise AuthResponseInvalid(
            f"The identity provider {idp.issuer} answered the token exchange without an "
            f"ID-JAG (issued_token_type {sanitize_remote_text(issued, max_chars=80)!r})",
            next_step="Ask your identity provider's administrator whether it issues "
            "identity assertion grants (ID-JAG) to this client",
        )
    claims = unverified_claims(jag) if len(jag) <= _MAX_ASSERTION_CHARS else None
    if claims is None:
        raise AuthResponseInvalid(
            f"The ID-JAG from {idp.issuer} is not a JWT", next_step="Tell its administrator"
        )
    for claim, wanted in (("aud", audience), ("resource", resource)):
        named = claims.get(claim)
        if named is not None and named != wanted and wanted not in _as_list(named):
            raise AuthError(
                f"The identity provider {idp.issuer} issued an ID-JAG for {claim} "
                f"{sanitize_remote_text(named, max_chars=200)!r}, not {wanted!r}; it is "
                "not sent on",
                next_step="Ask your identity provider's administrator to map this MCP "
                "server to its authorization server",
            )
    return jag


def _as_list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def _idp_refused(
    response: HttpResponse, endpoint: str, idp_client: ClientRegistration, audience: str
) -> NoReturn:
    error, detail = token_error(response)
    where = idp_client.issuer
    if error == "invalid_grant" and not is_outage(response, error):
        raise LoginRequired(
            f"The identity provider {where} refused the ID token ({detail})",
            next_step="Sign in to it again and write the new ID token to the --id-token-file",
        )
    if error in ("access_denied", "invalid_target", "unauthorized_client"):
        raise AuthError(
            f"The identity provider {where} refused an ID-JAG for {audience} ({detail})",
            next_step="Ask your identity provider's administrator to allow this client "
            "(--idp-client-id) to reach this MCP server",
        )
    _refused(
        response,
        endpoint,
        idp_client,
        what="the token exchange",
        grant_fix="Ask your identity provider's administrator whether it issues identity "
        "assertion grants (ID-JAG) to this client",
        client_flag="--idp-client-id",
    )


def redeem_id_jag(
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    jag: str,
    *,
    idp_issuer: str,
    resource: str,
    scopes: tuple[str, ...],
    quirks: AuthServerQuirks,
    now: float,
    dpop: DpopProofs | None = None,
) -> Step[TokenSet]:
    """Present the ID-JAG to the MCP server's authorization server as a JWT bearer grant
    (RFC 7523 §2.1; the extension's "Access Token Request"), with this client's own
    authentication there, and with `dpop` a proof (RFC 9449)."""
    form = _grant_form(JWT_BEARER_GRANT, resource, scopes, ("assertion", jag))
    endpoint = metadata.token_endpoint
    response, quirks = yield from post_grant(endpoint, client, form, quirks, dpop)
    if not response.is_success:
        error, detail = token_error(response)
        if error == "invalid_grant":
            raise AuthError(
                f"{metadata.issuer} refused the ID-JAG from {idp_issuer} ({detail})",
                next_step=f"Ask its administrator to trust {idp_issuer} for this server; "
                "if it says the assertion expired or was used, check this machine's clock",
            )
        _refused(
            response,
            metadata.token_endpoint,
            client,
            what="an identity assertion (ID-JAG)",
            grant_fix="Ask the authorization server's administrator to accept ID-JAGs "
            f"from {idp_issuer} for this client",
        )
    return _issued(response, metadata, resource, scopes, now, quirks, dpop)
