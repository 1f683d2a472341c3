"""`doctor`'s login-readiness steps: which client registration a login would use, PKCE
S256, and the loopback redirect. Decided by the auth layer's own rules (registration.py's
`plan_client`, pkce.py, login.py's scope and callback-port choices); nothing is
registered and no authorization request is made. The redirect check binds the callback
port for a moment, as a login would, and closes it at once.
"""

from __future__ import annotations

from mcp_bridge.auth.auth_records import StoredClient
from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.discovery import AuthorizationContext
from mcp_bridge.auth.errors import AuthError
from mcp_bridge.auth.login import registered_callback_port
from mcp_bridge.auth.loopback import CALLBACK_PATH
from mcp_bridge.auth.loopback_sockets import bind_loopback
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.pkce import require_s256
from mcp_bridge.auth.registration import from_pre_registered, no_way_to_register, plan_client
from mcp_bridge.auth.settings import OAuthSettings
from mcp_bridge.auth.sign_in import chosen_scopes
from mcp_bridge.engine.checkup.findings import Finding
from mcp_bridge.errors import ConfigError

__all__ = ["pkce_finding", "redirect_finding", "registration_finding", "reusable_client"]


def reusable_client(
    settings: OAuthSettings, context: AuthorizationContext, stored: StoredClient | None
) -> ClientRegistration | None:
    """The kept registration a login would consider: one made for the scopes it asks."""
    if stored is None or not stored.covers(chosen_scopes(settings, context)):
        return None
    return stored.registration


def _callback_port(settings: OAuthSettings, reusable: ClientRegistration | None) -> int:
    """The port a login listens on: --callback-port, else the kept registration's, else 0
    (any free port)."""
    return settings.callback_port or registered_callback_port(reusable, settings.callback_host)


def registration_finding(
    settings: OAuthSettings,
    metadata: AuthServerMetadata,
    reusable: ClientRegistration | None,
    *,
    now: float,
) -> Finding:
    """Which client id a login at `metadata.issuer` would use (MCP Authorization, "Client
    Registration": pre-registered, CIMD, DCR), or why there is none."""
    port = _callback_port(settings, reusable)
    redirect_uri = f"http://{settings.callback_host.value}:{port}{CALLBACK_PATH}"
    pre_registered = settings.pre_registered()
    plan = plan_client(
        metadata,
        redirect_uri,
        stored=reusable,
        pre_registered=pre_registered,
        client_metadata_url=settings.client_metadata_url,
        now=now,
    )
    if plan.method is RegistrationMethod.PRE_REGISTERED:
        assert pre_registered is not None  # plan_client's first rule
        try:
            client = from_pre_registered(pre_registered, metadata)
        except ConfigError as exc:
            return Finding.from_error("client-registration", exc)
        return Finding.passed(
            "client-registration",
            f"the pre-registered client {client.client_id} (--client-id), "
            f"authenticating with {client.token_endpoint_auth_method}",
        )
    if plan.method is RegistrationMethod.CIMD:
        return Finding.passed(
            "client-registration",
            f"the client id metadata document {settings.client_metadata_url}: the "
            "authorization server fetches it, nothing is registered",
        )
    unused_cimd = (
        "; it does not support client id metadata documents, so --client-metadata-url is not used"
        if settings.client_metadata_url is not None
        else ""
    )
    if plan.reuses is not None:
        return Finding.passed(
            "client-registration",
            f"the client {plan.reuses.client_id} registered at {metadata.issuer} before "
            f"(dynamic registration), kept in the vault{unused_cimd}",
        )
    if plan.method is RegistrationMethod.DCR:
        return Finding.passed(
            "client-registration",
            f"dynamic registration at {metadata.registration_endpoint} when you first "
            f"sign in (doctor registers nothing){unused_cimd}",
        )
    error = no_way_to_register(metadata)
    offers_cimd = (
        ". It does accept client id metadata documents: --client-metadata-url with an https "
        "URL of yours is another way"
        if metadata.client_id_metadata_document_supported
        else ""
    )
    return Finding.failed("client-registration", error.what + offers_cimd, error.next_step)


def pkce_finding(metadata: AuthServerMetadata) -> Finding:
    """PKCE S256 advertised (MCP Authorization: a client MUST refuse a server without it)."""
    if metadata.is_guessed:
        return Finding.passed(
            "pkce", "no metadata to say so; the 2025-03-26 revision requires S256 of servers"
        )
    try:
        require_s256(metadata)
    except AuthError as exc:
        return Finding.from_error("pkce", exc)
    return Finding.passed(
        "pkce", f"S256 advertised ({', '.join(metadata.code_challenge_methods_supported)})"
    )


def redirect_finding(
    settings: OAuthSettings,
    metadata: AuthServerMetadata | None,
    reusable: ClientRegistration | None,
) -> Finding:
    """The redirect a login would use: a loopback URI (RFC 8252 §7.3, §8.3) on a port that
    can be listened on now, or the device grant, which needs none."""
    if settings.device:
        if metadata is None:
            return Finding.passed("redirect", "none: device login (--device)")
        if metadata.device_authorization_endpoint is None:
            return Finding.failed(
                "redirect",
                f"--device asks for a device login, and {metadata.issuer} offers none",
                "Drop --device: the browser login works over SSH too (paste the address the "
                "browser ends on)",
            )
        return Finding.passed(
            "redirect",
            f"none: device login (--device) at {metadata.device_authorization_endpoint}",
        )
    port = _callback_port(settings, reusable)
    host = settings.callback_host
    try:
        sockets = bind_loopback(host, port)
    except AuthError as exc:
        return Finding.from_error(
            "redirect",
            exc,
            "Stop the program that uses it, or choose another port with --callback-port (and "
            "register that redirect URI with the authorization server)",
        )
    except OSError as exc:
        return Finding.failed(
            "redirect",
            f"cannot listen on {host.value} for the login callback: {exc.strerror or exc}",
            "Check that this machine has a loopback interface, or use --device",
        )
    bound = sockets[0].getsockname()[1]
    for sock in sockets:
        sock.close()
    uri = f"http://{host.value}:{port or '<any free port>'}{CALLBACK_PATH}"
    if settings.callback_port:
        why = "--callback-port; free now"
    elif port:
        why = "the port the kept registration was made for; free now"
    else:
        why = f"RFC 8252 §7.3: loopback, any port; listening works here (e.g. {bound})"
    detail = f"{uri} ({why})"
    if settings.client_id is not None:
        detail += (
            f"; client {settings.client_id} must have it registered (a loopback URI matches "
            "at any port, RFC 8252 §7.3; for an authorization server that matches ports "
            "exactly, fix one with --callback-port)"
        )
    return Finding.passed("redirect", detail)
