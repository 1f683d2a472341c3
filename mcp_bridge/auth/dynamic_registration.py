"""RFC 7591 dynamic client registration (MCP 2026-07-28, Authorization: Client
Registration, where it is deprecated but still the common case): what we tell the AS about
ourselves (`ClientMetadata`, a native public client), and the AS's answer read into a
`ClientRegistration` or a clear error. Pure (a step as in http_step.py; the clock is a
parameter); whether to register at all is registration.py's decision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mcp_bridge.auth.client_identity import (
    SUPPORTED_AUTH_METHODS,
    ClientRegistration,
    RegistrationMethod,
)
from mcp_bridge.auth.errors import (
    CLIENT_ID_STEP,
    STATIC_TOKEN_STEP,
    AuthResponseInvalid,
    AuthServerUnavailable,
    NoAuthorizationServer,
    RegistrationFailed,
    sanitize_remote_text,
)
from mcp_bridge.auth.http_step import HttpRequest, Step, clamped, json_number, shown_json
from mcp_bridge.auth.metadata import AuthServerMetadata

__all__ = ["MAX_SECRET_LIFETIME_S", "ClientMetadata", "register_client"]

MAX_SECRET_LIFETIME_S = 365 * 24 * 3600.0  # a later client_secret_expires_at is cut to this


@dataclass(frozen=True, slots=True)
class ClientMetadata:
    """What we tell an AS about ourselves (RFC 7591 §2). Set `scope` to the scopes the
    login will ask for: some ASes (the SDK's among them) grant only scopes named at
    registration, and refuse the authorization request otherwise."""

    redirect_uris: tuple[str, ...]
    client_name: str = "mcp-bridge"
    client_uri: str | None = None
    software_id: str | None = None
    software_version: str | None = None
    scope: str | None = None

    def registration_request(self) -> dict[str, object]:
        """The DCR body: a native public client using the code and refresh grants."""
        doc: dict[str, object] = {
            "client_name": self.client_name,
            "redirect_uris": list(self.redirect_uris),
            "grant_types": ["authorization_code", "refresh_token"],  # SHOULD: asks for refresh
            "response_types": ["code"],
            "token_endpoint_auth_method": "none",  # a public client: no secret to keep
            "application_type": "native",  # MUST be sent; "native" for desktop apps
        }
        for key in ("client_uri", "software_id", "software_version", "scope"):
            value = getattr(self, key)
            if value is not None:
                doc[key] = value
        return doc


def register_client(
    metadata: AuthServerMetadata, client_metadata: ClientMetadata, *, now: float
) -> Step[ClientRegistration]:
    """RFC 7591 dynamic registration at `metadata.registration_endpoint`. Whatever the AS
    decides wins: a secret or another auth method it hands a public client is used as
    returned (RFC 7591 §3.2.1), unless it is a method we cannot do."""
    endpoint = metadata.registration_endpoint
    if endpoint is None:
        raise RegistrationFailed(f"{metadata.issuer} has no registration endpoint")
    response = yield HttpRequest.post_json(endpoint, client_metadata.registration_request())
    if response.status >= 500 or response.status == 429:
        raise AuthServerUnavailable(
            f"Client registration at {endpoint} failed with HTTP {response.status}",
            next_step="Try again later",
        )
    if not response.is_success:
        doc = response.json_or_none()
        if metadata.is_guessed and not (isinstance(doc, Mapping) and "error" in doc):
            raise _nothing_published(metadata.issuer, endpoint, response.status)
        raise _registration_refused(doc, endpoint, client_metadata)
    doc = response.json(what="registration response")
    if (
        not isinstance(doc, dict)
        or not isinstance(doc.get("client_id"), str)
        or not doc["client_id"]
    ):
        raise AuthResponseInvalid(
            f"The registration response from {endpoint} has no client_id",
            next_step="Tell the server's owner",
        )
    secret = doc.get("client_secret")
    secret = secret if isinstance(secret, str) and secret else None
    method = doc.get("token_endpoint_auth_method")
    if not isinstance(method, str):
        # RFC 7591 §2: the default is client_secret_basic, which only makes sense with a secret.
        method = "client_secret_basic" if secret else "none"
    if method not in SUPPORTED_AUTH_METHODS or (method != "none" and secret is None):
        raise RegistrationFailed(
            f"{metadata.issuer} registered us for token endpoint auth method "
            f"{sanitize_remote_text(method, max_chars=60)!r}"
            + (" without a secret" if method != "none" and secret is None else "")
            + ", which this client cannot use",
            next_step="Register a client by hand and configure its client id",
        )
    uris = doc.get("redirect_uris")
    return ClientRegistration(
        issuer=metadata.issuer,
        client_id=doc["client_id"],
        method=RegistrationMethod.DCR,
        token_endpoint_auth_method=method,
        redirect_uris=(
            tuple(u for u in uris if isinstance(u, str))
            if isinstance(uris, list)
            else client_metadata.redirect_uris
        ),
        client_secret=secret,
        client_secret_expires_at=(
            None
            if secret is None  # the field only qualifies a secret
            else _secret_expires_at(doc.get("client_secret_expires_at"), endpoint, now)
        ),
    )


def _secret_expires_at(value: object, endpoint: str, now: float) -> float | None:
    """RFC 7591 §3.2.1 `client_secret_expires_at`: seconds since 1970, or 0 for a secret
    that does not expire (None here, as when the AS leaves it out). A time past
    MAX_SECRET_LIFETIME_S from now is cut to that: registering again a year on costs a
    login nothing. A negative time, NaN or not a number is refused rather than read as 0."""
    if value is None:
        return None
    expires_at = json_number(value)
    if expires_at is None or expires_at < 0:
        raise AuthResponseInvalid(
            f"The registration response from {endpoint} has client_secret_expires_at "
            f"{shown_json(value)}; RFC 7591 §3.2.1 wants a time in seconds since 1970, "
            "or 0 for a secret that does not expire",
            next_step="Tell the server's owner, or configure a client id by hand",
        )
    if expires_at == 0:
        return None
    return clamped(expires_at, 0.0, now + MAX_SECRET_LIFETIME_S)


def _nothing_published(origin: str, endpoint: str, status: int) -> NoAuthorizationServer:
    """The error for a server that published no OAuth metadata at all, whose 2025-03-26
    default registration endpoint (guessed, as that revision says) is no OAuth endpoint
    either: no sign-in can start, and a static token is by far the likeliest way in."""
    return NoAuthorizationServer(
        f"{origin} publishes no OAuth metadata (no protected-resource metadata, no "
        f"authorization server metadata) and {endpoint} registers no clients "
        f"(HTTP {status}), so it most likely takes a static token",
        next_step=f"{STATIC_TOKEN_STEP}; or, if it does have an OAuth sign-in, {CLIENT_ID_STEP}",
    )


def _registration_refused(
    doc: object, endpoint: str, client_metadata: ClientMetadata
) -> RegistrationFailed:
    error = doc.get("error") if isinstance(doc, Mapping) else None
    description = doc.get("error_description") if isinstance(doc, Mapping) else None
    detail = sanitize_remote_text(error) or "no error code"
    if description:
        detail += f": {sanitize_remote_text(description)}"
    if error == "invalid_redirect_uri":
        # Client Registration (DCR): surface redirect rejections clearly; the user can switch the
        # loopback host (127.0.0.1 <-> localhost) or configure a client by hand.
        return RegistrationFailed(
            f"{endpoint} refused our redirect URI {client_metadata.redirect_uris[0]} ({detail})",
            next_step="Try the other loopback host name, or configure a client id by hand",
        )
    return RegistrationFailed(
        f"Client registration at {endpoint} was refused ({detail})",
        next_step="Configure a client id by hand, or tell the server's owner",
    )
