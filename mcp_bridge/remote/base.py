"""What the bridge needs from a remote transport, and what a transport needs from auth.

`remote` never imports `auth`: a transport is handed a CredentialProvider, so transports are
tested without OAuth and auth without HTTP.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from mcp_bridge.jsonrpc import JsonObject, RequestId

# Where a transport puts every message the remote sends: responses, notifications and
# server-to-client requests, in the order it received them.
Deliver = Callable[[JsonObject], Awaitable[None]]


class CredentialProvider(Protocol):
    """Supplies request headers (a bearer token) and recovers from auth failures."""

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        """Headers to add to the `method` request to `url` (may be empty). Asked for each
        request, and again for each redirect hop: a DPoP proof (RFC 9449 §4.2) names the
        method and URL it goes with, so it cannot be reused for another."""
        ...

    def on_dpop_nonce(self, url: str, nonce: str) -> None:
        """A response from `url` carried `DPoP-Nonce: nonce` (RFC 9449 §9): the proofs
        sent there from now on must name it. Called before the response is looked at,
        so a 401 `use_dpop_nonce` finds the nonce already known."""
        ...

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        """The remote answered 401 with this challenge. True: new headers are ready, retry once."""
        ...

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        """The remote answered 403 with this challenge. True: step-up done, retry once."""
        ...

    async def on_retry_refused(self, www_authenticate: str | None) -> None:
        """The retry that on_unauthorized asked for met a 401 as well. Raise an error that
        says why when the provider can tell; returning leaves the transport's own error.
        Never a refresh or a login: the exchange has no retry left."""
        ...


class NoCredentials:
    """A CredentialProvider for servers that need no authorization (or only static headers)."""

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        return {}

    def on_dpop_nonce(self, url: str, nonce: str) -> None:
        return None

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        return False

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        return False

    async def on_retry_refused(self, www_authenticate: str | None) -> None:
        return None


class RemoteTransport(Protocol):
    """One logical connection to one remote MCP server.

    Lifecycle: `start(deliver)`, then any number of `send`/`cancel`, then `aclose()`.
    A transport never raises out of `send` because the remote failed: a request that cannot
    be answered gets a JSON-RPC error response (naming the URL and what happened) passed to
    `deliver`, and the transport tries again on the next message.
    """

    url: str

    async def start(self, deliver: Deliver) -> None:
        """Get ready to send; messages from the remote go to `deliver` from now on."""
        ...

    async def send(self, message: JsonObject, *, headers: Mapping[str, str] | None = None) -> None:
        """Send one message. For a request this returns once it is under way; its response
        (and anything streamed with it) arrives through `deliver`."""
        ...

    async def cancel(self, request_id: RequestId) -> None:
        """Stop waiting for a request: the transport's own way of cancelling it."""
        ...

    async def aclose(self) -> None:
        """End the remote session (DELETE where there is one) and close every stream."""
        ...
