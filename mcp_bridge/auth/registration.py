"""Getting a client id from an authorization server (MCP 2026-07-28, Authorization: Client
Registration): which way a login gets one, in the spec's priority, and the two ways that
need no request. The records are in client_identity.py, the RFC 7591 request and its
answer in dynamic_registration.py.

Pure (steps as in http_step.py; the clock is a parameter).

Priority (that page's SHOULD order: pre-registered, CIMD, DCR, then ask the user):
1. a pre-registered client from the config (its issuer, if given, must match: the spec says
   a client pre-registered for another AS SHOULD be an error);
2. CIMD, when the AS sets `client_id_metadata_document_supported` (checked first, as the
   spec says) and a client metadata document URL is configured: the URL is the client id,
   nothing is sent;
3. DCR at `registration_endpoint` (deprecated but still the common case), as a native
   public client (`application_type` MUST be sent; `refresh_token` SHOULD be among the
   `grant_types`); a stored DCR registration is reused when it was made with this very
   issuer (credentials are keyed by issuer and never reused with another AS) for this
   redirect URI;
4. otherwise RegistrationFailed, telling the user to configure a client id. When nothing
   at all was published (no protected-resource metadata, no AS metadata, and the 2025-03-26
   default /register is not there either), the server most likely takes a static token:
   NoAuthorizationServer (dynamic_registration.py) says so, naming --header first and
   --client-id second.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from mcp_bridge.auth.client_identity import (
    SUPPORTED_AUTH_METHODS,
    ClientRegistration,
    PreRegisteredClient,
    RegistrationMethod,
)
from mcp_bridge.auth.dynamic_registration import ClientMetadata, register_client
from mcp_bridge.auth.errors import (
    CLIENT_ID_STEP,
    STATIC_TOKEN_STEP,
    RegistrationFailed,
)
from mcp_bridge.auth.http_step import Step
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.errors import ConfigError

__all__ = [
    "NO_CLIENT_STEP",
    "ClientPlan",
    "auth_method_for_secret",
    "check_cimd_url",
    "from_pre_registered",
    "no_way_to_register",
    "obtain_client",
    "plan_client",
]

log = logging.getLogger(__name__)

# When no client id can be had: one configured by hand, or no OAuth at all (a server that
# registers no clients often takes tokens issued out of band).
NO_CLIENT_STEP = (
    f"Either {CLIENT_ID_STEP}, or, if the server takes tokens issued out of band: "
    + STATIC_TOKEN_STEP[0].lower()
    + STATIC_TOKEN_STEP[1:]
)


def check_cimd_url(url: str) -> str:
    """A client id metadata document URL must be https with a path, and have no fragment,
    userinfo or dot segments (CIMD draft §3); ConfigError otherwise."""
    parts = urlsplit(url)
    segments = parts.path.split("/")
    if (
        parts.scheme != "https"
        or not parts.hostname
        or parts.path in ("", "/")
        or parts.fragment
        or parts.username is not None
        or "." in segments
        or ".." in segments
    ):
        raise ConfigError(
            f"The client metadata document URL {url!r} is not usable as a client id",
            next_step="Use an https URL with a path, no fragment and no user info",
        )
    return url


def auth_method_for_secret(metadata: AuthServerMetadata) -> str:
    """How to send a secret to this AS: Basic (RFC 6749 §2.3.1's MUST-support), unless it
    lists only the form field."""
    supported = metadata.token_endpoint_auth_methods_supported
    if "client_secret_basic" not in supported and "client_secret_post" in supported:
        return "client_secret_post"
    return "client_secret_basic"


def from_pre_registered(
    client: PreRegisteredClient, metadata: AuthServerMetadata
) -> ClientRegistration:
    """The configured client as a registration at `metadata.issuer`; ConfigError when it
    is bound to another issuer or names an auth method we cannot do."""
    if client.issuer is not None and client.issuer != metadata.issuer:
        raise ConfigError(
            f"The configured client id is for the authorization server {client.issuer}, "
            f"but this server now uses {metadata.issuer}; it must not be used there",
            next_step="Update the client id and issuer in the server's configuration",
        )
    method = client.token_endpoint_auth_method or (
        auth_method_for_secret(metadata) if client.client_secret else "none"
    )
    if method not in SUPPORTED_AUTH_METHODS:
        raise ConfigError(
            f"Token endpoint auth method {method!r} is not supported",
            next_step=f"Use one of {', '.join(SUPPORTED_AUTH_METHODS)}",
        )
    return ClientRegistration(
        issuer=metadata.issuer,
        client_id=client.client_id,
        method=RegistrationMethod.PRE_REGISTERED,
        token_endpoint_auth_method=method,
        client_secret=client.client_secret,
    )


@dataclass(frozen=True, slots=True)
class ClientPlan:
    """Which client identity a login at one AS would use, decided without a request.
    `method` None: there is no way to get one (`no_way_to_register`). `reuses`: the stored
    dynamic registration it would use again instead of registering."""

    method: RegistrationMethod | None
    reuses: ClientRegistration | None = None


def plan_client(
    metadata: AuthServerMetadata,
    redirect_uri: str,
    *,
    stored: ClientRegistration | None = None,
    pre_registered: PreRegisteredClient | None = None,
    client_metadata_url: str | None = None,
    now: float,
) -> ClientPlan:
    """The decision of `obtain_client`, in the priority of the module docstring; pure."""
    if pre_registered is not None:
        return ClientPlan(RegistrationMethod.PRE_REGISTERED)
    if client_metadata_url is not None and metadata.client_id_metadata_document_supported:
        return ClientPlan(RegistrationMethod.CIMD)
    # Only a dynamic registration is worth keeping: the two above cost nothing to rebuild,
    # and rebuilding them lets a changed config take effect at once.
    if (
        stored is not None
        and stored.method is RegistrationMethod.DCR
        and stored.is_usable(metadata.issuer, redirect_uri, now=now)
    ):
        return ClientPlan(RegistrationMethod.DCR, reuses=stored)
    if metadata.registration_endpoint is None:
        return ClientPlan(None)
    return ClientPlan(RegistrationMethod.DCR)


def no_way_to_register(metadata: AuthServerMetadata) -> RegistrationFailed:
    """The error for an AS that a login could get no client id from."""
    return RegistrationFailed(
        f"The authorization server {metadata.issuer} offers no way to register this "
        "client (no client id metadata document support, no registration endpoint)",
        next_step=NO_CLIENT_STEP,
    )


def obtain_client(
    metadata: AuthServerMetadata,
    client_metadata: ClientMetadata,
    *,
    stored: ClientRegistration | None = None,
    pre_registered: PreRegisteredClient | None = None,
    client_metadata_url: str | None = None,
    now: float,
) -> Step[ClientRegistration]:
    """The client identity to use at `metadata.issuer`, as `plan_client` decides. Yields
    only when it registers (DCR). The caller stores the result under its issuer when it
    differs from `stored`."""
    plan = plan_client(
        metadata,
        client_metadata.redirect_uris[0],
        stored=stored,
        pre_registered=pre_registered,
        client_metadata_url=client_metadata_url,
        now=now,
    )
    if plan.method is RegistrationMethod.PRE_REGISTERED:
        assert pre_registered is not None  # plan_client's first rule
        return from_pre_registered(pre_registered, metadata)
    if plan.method is RegistrationMethod.CIMD:
        assert client_metadata_url is not None  # plan_client's second rule
        return ClientRegistration(
            issuer=metadata.issuer,
            client_id=check_cimd_url(client_metadata_url),
            method=RegistrationMethod.CIMD,
            token_endpoint_auth_method="none",  # CIMD forbids shared secrets
        )
    if plan.reuses is not None:
        return plan.reuses
    if stored is not None:
        log.info("stored client registration does not fit %s; getting a new one", metadata.issuer)
    if plan.method is None:
        raise no_way_to_register(metadata)
    registration = yield from register_client(metadata, client_metadata, now=now)
    return registration
