"""The authorization request (RFC 6749 §4.1.1 + PKCE + RFC 8707 + MCP 2026-07-28 Authorization)
and the validation of its callback (state, RFC 9207 `iss`, error) before any code is redeemed.

Pure apart from the OS random source for `state` and the verifier. The browser, the
loopback listener and the token request live elsewhere; this module builds the URL to open
and decides whether what came back to the listener may be used.
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.discovery import AuthorizationContext, AuthServerQuirks
from mcp_bridge.auth.errors import AuthorizationDenied, CallbackRejected, sanitize_remote_text
from mcp_bridge.auth.pkce import PkcePair, require_s256
from mcp_bridge.auth.scopes import scope_param
from mcp_bridge.auth.urlpolicy import NetworkZone, UrlPolicy, network_zone
from mcp_bridge.errors import ConfigError

__all__ = [
    "PROVIDER_DEFAULT_PARAMS",
    "RESERVED_AUTHORIZE_PARAMS",
    "AuthorizationRequest",
    "PendingAuthorization",
    "build_authorization_request",
    "parse_callback_query",
    "validate_callback",
]

# Parameters this module sets itself; `--authorize-param` may not override them, since
# doing so would defeat PKCE, state, the audience binding or the scope decision.
RESERVED_AUTHORIZE_PARAMS = frozenset(
    {
        "response_type",
        "client_id",
        "redirect_uri",
        "state",
        "code_challenge",
        "code_challenge_method",
        "resource",
        "scope",
        "dpop_jkt",
    }
)
_STATE_BYTES = 32

# Authorization request parameters some issuers need by default: the one place a provider is
# named (docs/oauth-in-the-wild.md §6), keyed by its exact issuer. A parameter the user set
# (`--authorize-param`) wins over these.
# Google issues a refresh token only when asked with access_type=offline, and after the
# first consent only with prompt=consent too ("Refreshing an access token (offline
# access)", Google's OAuth 2.0 for web server applications); without both, every login
# ends an hour later in another browser login.
PROVIDER_DEFAULT_PARAMS: Mapping[str, tuple[tuple[str, str], ...]] = {
    "https://accounts.google.com": (("access_type", "offline"), ("prompt", "consent")),
}


@dataclass(frozen=True, slots=True)
class PendingAuthorization:
    """What must be remembered between opening the browser and the callback (MCP "Authorization
    Response Validation": recorded before redirecting): the verifier and state (secret, hidden
    from repr) with the expected issuer."""

    state: str = field(repr=False)
    code_verifier: str = field(repr=False)
    issuer: str
    # RFC 9207 §2.4: when the AS advertises `iss`, a response without it is rejected.
    iss_required: bool
    client_id: str
    redirect_uri: str
    resource: str
    scopes: tuple[str, ...]
    # What the issuer is known to need (auth_records.py): the code exchange starts with it.
    quirks: AuthServerQuirks = field(default_factory=AuthServerQuirks)


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    url: str  # checked by the URL policy: safe to hand to the browser opener
    pending: PendingAuthorization


def build_authorization_request(
    context: AuthorizationContext,
    client: ClientRegistration,
    *,
    redirect_uri: str,
    scopes: tuple[str, ...],
    policy: UrlPolicy,
    extra_params: Mapping[str, str] | None = None,
    pkce: PkcePair | None = None,
    quirks: AuthServerQuirks | None = None,
    dpop_jkt: str | None = None,
) -> AuthorizationRequest:
    """The URL to open and the record to keep. `quirks`: what the vault remembers of this
    issuer (StoredClient.quirks), carried to the code exchange; with `send_resource=False`
    the request carries no RFC 8707 `resource`, as after an `invalid_target` refusal
    (AuthorizationDenied.refuses_resource). Raises AuthError when the AS does not support S256
    (absent `code_challenge_methods_supported` means refuse), ConfigError when an extra
    parameter would override ours, and UrlRefused when the resulting URL is not one to open in a
    browser (MCP Security Best Practices). `dpop_jkt`: the thumbprint of the DPoP key the
    tokens will be bound to, which binds the code to it as well (RFC 9449 §10)."""
    metadata = context.auth_server
    require_s256(metadata)
    _check_redirect_uri(redirect_uri)
    overriding = sorted(RESERVED_AUTHORIZE_PARAMS.intersection(extra_params or {}))
    if overriding:
        raise ConfigError(
            f"Extra authorization parameters may not set {', '.join(overriding)}",
            next_step="Remove them from --authorize-param",
        )
    pkce = pkce or PkcePair.generate()
    quirks = quirks or AuthServerQuirks()
    state = secrets.token_urlsafe(_STATE_BYTES)
    params: list[tuple[str, str]] = [
        ("response_type", "code"),
        ("client_id", client.client_id),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("code_challenge", pkce.challenge),
        ("code_challenge_method", "S256"),
    ]
    if quirks.send_resource:
        # MCP MUST: always, even when the AS does not advertise RFC 8707 support; left out only
        # for an AS that answered it with invalid_target (AuthServerQuirks.send_resource).
        params.append(("resource", context.resource))
    scope = scope_param(scopes)
    if scope is not None:
        params.append(("scope", scope))
    if dpop_jkt is not None:
        params.append(("dpop_jkt", dpop_jkt))
    extra = dict(extra_params or {})
    for name, value in PROVIDER_DEFAULT_PARAMS.get(metadata.issuer, ()):
        extra.setdefault(name, value)
    params.extend(extra.items())
    # RFC 6749 §3.1: a query already in the endpoint URL must be kept.
    endpoint = urlsplit(metadata.authorization_endpoint)
    query = urlencode([*parse_qsl(endpoint.query, keep_blank_values=True), *params])
    url = urlunsplit((endpoint.scheme, endpoint.netloc, endpoint.path, query, ""))
    policy.check_browser(url)
    pending = PendingAuthorization(
        state=state,
        code_verifier=pkce.verifier,
        issuer=metadata.issuer,
        iss_required=metadata.authorization_response_iss_parameter_supported,
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        resource=context.resource,
        scopes=scopes,
        quirks=quirks,
    )
    return AuthorizationRequest(url, pending)


def _check_redirect_uri(redirect_uri: str) -> None:
    """MCP "Communication Security": a redirect URI is https, or http to a loopback host (RFC 8252
    §7.3), and carries no fragment (RFC 6749 §3.1.2)."""
    parts = urlsplit(redirect_uri)
    is_loopback_http = parts.scheme == "http" and network_zone(parts.hostname or "") is (
        NetworkZone.LOOPBACK
    )
    if not (parts.scheme == "https" or is_loopback_http) or not parts.hostname or parts.fragment:
        raise ConfigError(
            f"The redirect URI {redirect_uri!r} is neither https nor http to a loopback address",
            next_step="Use http://127.0.0.1:<port>/callback or an https URL",
        )


def parse_callback_query(raw_query: str) -> dict[str, str]:
    """Decode the callback's query string; CallbackRejected when a parameter repeats
    (RFC 6749 §3.1: parameters MUST NOT be included more than once)."""
    pairs = parse_qsl(raw_query, keep_blank_values=True)
    query = dict(pairs)
    if len(query) != len(pairs):
        raise CallbackRejected(
            "The authorization response repeats a parameter; it was discarded",
            next_step="Start the login again",
        )
    return query


def validate_callback(pending: PendingAuthorization, query: Mapping[str, str]) -> str:
    """The authorization code, once the callback passed every check, in this order:
    1. `state` present and equal, compared in constant time (MCP SHOULD);
    2. RFC 9207 `iss` per MCP "Authorization Response Validation": exact string equality after
       URL decoding only; on a mismatch the error fields are not looked at, as they may be the
       attacker's;
    3. `error` -> AuthorizationDenied carrying the AS's (sanitized) error;
    4. `code` present.
    Anything else raises CallbackRejected; the code must then not be redeemed."""
    state = query.get("state")
    if state is None or not hmac.compare_digest(state.encode(), pending.state.encode()):
        raise CallbackRejected(
            "The authorization response does not carry this login's state"
            + (" (none at all)" if state is None else "")
            + "; it may be forged or from an older login, and was discarded",
            next_step="Start the login again",
        )
    iss = query.get("iss")
    if iss is None and pending.iss_required:
        raise CallbackRejected(
            f"The authorization response has no `iss`, but {pending.issuer} promises one "
            "(RFC 9207); it was discarded",
            next_step="Start the login again; if it repeats, tell the server's owner",
        )
    if iss is not None and iss != pending.issuer:
        raise CallbackRejected(
            f"The authorization response comes from issuer {sanitize_remote_text(iss)!r}, not "
            f"{pending.issuer!r} (possible mix-up attack, RFC 9207); it was discarded",
            next_step="Start the login again",
        )
    error = query.get("error")
    if error is not None:
        error_code = sanitize_remote_text(error, max_chars=60)
        description = sanitize_remote_text(query.get("error_description", ""))
        raise AuthorizationDenied(
            f"The authorization server refused the login: {error_code}"
            + (f" ({description})" if description else ""),
            next_step="Run the login again"
            + (" and approve access" if error == "access_denied" else ""),
            error=error_code,
        )
    code = query.get("code")
    if not code:
        raise CallbackRejected(
            "The authorization response has neither a code nor an error",
            next_step="Start the login again",
        )
    return code
