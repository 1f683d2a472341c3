"""Getting a client id from an authorization server (MCP 2026-07-28, Authorization: Client
Registration): the decision in the spec's priority, the RFC 7591 dynamic registration step,
and the record kept in the vault.

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
   NoAuthorizationServer says so, naming --header first and --client-id second.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from mcp_bridge.auth.errors import (
    CLIENT_ID_STEP,
    STATIC_TOKEN_STEP,
    AuthResponseInvalid,
    AuthServerUnavailable,
    NoAuthorizationServer,
    RegistrationFailed,
    sanitize_remote_text,
)
from mcp_bridge.auth.http_step import (
    HttpRequest,
    Step,
    clamped,
    json_number,
    shown_json,
    stored_time,
)
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.errors import ConfigError

if TYPE_CHECKING:
    # A type only: importing it loads cryptography, which a daemon serving servers
    # without OAuth never needs (~9 MB).
    from mcp_bridge.auth.client_assertion import ClientAssertions

__all__ = [
    "MAX_SECRET_LIFETIME_S",
    "NO_CLIENT_STEP",
    "SUPPORTED_AUTH_METHODS",
    "ClientMetadata",
    "ClientPlan",
    "ClientRegistration",
    "PreRegisteredClient",
    "RegistrationMethod",
    "auth_method_for_secret",
    "check_cimd_url",
    "from_pre_registered",
    "no_way_to_register",
    "obtain_client",
    "plan_client",
    "register_client",
]

log = logging.getLogger(__name__)

# Client authentication at the token endpoint that a registration (dynamic, or configured
# for a browser login) may ask of us (RFC 6749 §2.3.1; `none` is OAuth 2.1's public
# client). private_key_jwt only with a key the user gives, for the grants without a
# browser (machine_login.py), which build their registrations themselves.
SUPPORTED_AUTH_METHODS = ("none", "client_secret_basic", "client_secret_post")
MAX_SECRET_LIFETIME_S = 365 * 24 * 3600.0  # a later client_secret_expires_at is cut to this
# When no client id can be had: one configured by hand, or no OAuth at all (a server that
# registers no clients often takes tokens issued out of band).
NO_CLIENT_STEP = (
    f"Either {CLIENT_ID_STEP}, or, if the server takes tokens issued out of band: "
    + STATIC_TOKEN_STEP[0].lower()
    + STATIC_TOKEN_STEP[1:]
)


class RegistrationMethod(enum.Enum):
    PRE_REGISTERED = "pre-registered"  # from the config file
    CIMD = "cimd"  # client id metadata document: the client id is our document's URL
    DCR = "dcr"  # RFC 7591 dynamic client registration


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


@dataclass(frozen=True, slots=True)
class PreRegisteredClient:
    """A client id (and maybe secret) the user configured. `issuer`, when known, binds it
    to one AS; without it the credentials are used with whatever AS discovery finds."""

    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    issuer: str | None = None
    token_endpoint_auth_method: str | None = None  # None: chosen from the AS metadata


@dataclass(frozen=True, slots=True)
class ClientRegistration:
    """A client identity at one authorization server; the vault files it under `issuer`."""

    issuer: str
    client_id: str
    method: RegistrationMethod
    token_endpoint_auth_method: str  # one of SUPPORTED_AUTH_METHODS, or private_key_jwt
    redirect_uris: tuple[str, ...] = ()
    client_secret: str | None = field(default=None, repr=False)
    client_secret_expires_at: float | None = None  # epoch seconds; None: never (RFC 7591 "0")
    # private_key_jwt: what signs the assertions. Never stored: the key stays in the user's
    # file, so a registration read back from the vault has none until the grant that
    # uses it puts it back (machine_login.py).
    assertions: ClientAssertions | None = field(default=None, repr=False, compare=False)

    def is_for(self, issuer: str) -> bool:
        """Credentials are bound to the issuer that issued them (MCP 2026-07-28, Client
        Registration: keyed by issuer, never reused with another AS)."""
        return self.issuer == issuer

    def is_usable(self, issuer: str, redirect_uri: str, *, now: float) -> bool:
        """Whether this stored registration can be used for a login at `issuer` with
        `redirect_uri`, or a new one is needed (other AS, expired secret, and for DCR a
        redirect URI the AS was not told about: many ASes match them exactly)."""
        if not self.is_for(issuer):
            return False
        if self.client_secret_expires_at is not None and self.client_secret_expires_at <= now:
            return False
        return self.method is not RegistrationMethod.DCR or redirect_uri in self.redirect_uris

    def to_json(self) -> dict[str, object]:
        doc: dict[str, object] = {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "method": self.method.value,
            "token_endpoint_auth_method": self.token_endpoint_auth_method,
            "redirect_uris": list(self.redirect_uris),
        }
        if self.client_secret is not None:
            doc["client_secret"] = self.client_secret
        if self.client_secret_expires_at is not None:
            doc["client_secret_expires_at"] = self.client_secret_expires_at
        return doc

    @classmethod
    def from_json(cls, doc: object) -> ClientRegistration:
        """Read a vault record back; AuthResponseInvalid if it is not one of ours."""
        try:
            if not isinstance(doc, dict):
                raise TypeError("not an object")
            secret = doc.get("client_secret")
            expires = doc.get("client_secret_expires_at")
            record = cls(
                issuer=_text(doc["issuer"]),
                client_id=_text(doc["client_id"]),
                method=RegistrationMethod(doc["method"]),
                token_endpoint_auth_method=_text(doc["token_endpoint_auth_method"]),
                redirect_uris=tuple(_text(uri) for uri in doc.get("redirect_uris", [])),
                client_secret=None if secret is None else _text(secret),
                client_secret_expires_at=None if expires is None else stored_time(expires),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthResponseInvalid(
                "The stored client registration is damaged", next_step="Log in again"
            ) from exc
        return record


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


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
