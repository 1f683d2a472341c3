"""The demo authorization server's clients that match loopback redirect URIs at any port
(RFC 8252 §7.3: a desktop client's callback port changes every login): the pre-registered
ones of its modes, CIMD clients, and, in `loopback_any_port` mode, registered ones. Each is
the SDK's client record, allowed every scope the demo knows (step-up asks for more than a
client registered with).
"""

from __future__ import annotations

from mcp.shared.auth import OAuthClientInformationFull
from pydantic import AnyHttpUrl, AnyUrl

from mcp_bridge.demo.auth_modes import ALL_SCOPES, PreRegisteredClient
from mcp_bridge.demo.client_documents import ClientDocument

__all__ = ["LOOPBACK_HOSTS", "AnyLoopbackPortClient", "document_client", "pre_registered_client"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")


class AnyLoopbackPortClient(OAuthClientInformationFull):
    """A client whose loopback redirect URIs match at any port (RFC 8252 §7.3)."""

    def validate_redirect_uri(self, redirect_uri: AnyUrl | None) -> AnyUrl:
        if redirect_uri is not None and redirect_uri.host in LOOPBACK_HOSTS:
            for registered in self.redirect_uris or []:
                if (registered.scheme, registered.host, registered.path) == (
                    redirect_uri.scheme,
                    redirect_uri.host,
                    redirect_uri.path,
                ):
                    return redirect_uri
        return super().validate_redirect_uri(redirect_uri)


def document_client(document: ClientDocument) -> AnyLoopbackPortClient:
    """The SDK's view of a CIMD client: public (no secret), any scope we know."""
    return AnyLoopbackPortClient(
        client_id=document.client_id,
        client_name=document.client_name,
        client_uri=AnyHttpUrl(document.client_uri) if document.client_uri else None,
        redirect_uris=[AnyUrl(uri) for uri in document.redirect_uris],
        grant_types=list(document.grant_types),
        response_types=["code"],
        token_endpoint_auth_method="none",
        scope=" ".join(ALL_SCOPES),
    )


def pre_registered_client(known: PreRegisteredClient) -> AnyLoopbackPortClient:
    """The SDK's view of a client the modes pre-register, as an admin would by hand."""
    return AnyLoopbackPortClient(
        client_id=known.client_id,
        client_secret=known.client_secret,
        # The SDK checks the method the client was registered with, and the bridge sends a
        # secret with HTTP Basic when the AS offers it.
        token_endpoint_auth_method="client_secret_basic" if known.client_secret else "none",
        redirect_uris=[AnyUrl(known.redirect_uri)],
        grant_types=["authorization_code", "refresh_token"],
        scope=" ".join(ALL_SCOPES),
        client_name=f"pre-registered {known.client_id}",
    )
