"""The one place an aiohttp client session is made (used by both `remote` and `auth`, so it
sits at the bottom layer with `paths`): OS trust store, proxies from the
environment, and timeouts that suit long-lived MCP streams."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import aiohttp

# Connecting should be quick; reading may legitimately wait minutes (a long tool call, an
# idle SSE stream), so only the connect phase has a deadline here. Callers that need a
# total deadline (metadata fetches) pass their own.
CONNECT_TIMEOUT_S = 30.0
USER_AGENT = "mcp-bridge"


def tls_context() -> ssl.SSLContext:
    """The OS trust store (truststore), so TLS-inspecting corporate proxies work as they
    do in the browser; the default context if truststore cannot inject on this platform."""
    try:
        import truststore

        return truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    except (ImportError, OSError, RuntimeError):
        return ssl.create_default_context()


def client_session(*, timeout_s: float | None = None) -> aiohttp.ClientSession:
    """A ClientSession with our TLS context and HTTP(S)_PROXY/NO_PROXY honoured.
    Must be created inside a running event loop and closed by the caller."""
    import aiohttp

    timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=CONNECT_TIMEOUT_S)
    connector = aiohttp.TCPConnector(ssl=tls_context())
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trust_env=True,  # HTTPS_PROXY, HTTP_PROXY, NO_PROXY and ~/.netrc, as curl does
        headers={"User-Agent": USER_AGENT},
        read_bufsize=2**16,
    )


class SessionHolder:
    """One aiohttp session for an owner: the one it was given (the giver closes it), or
    one made on first use, inside the running loop (closed by `aclose`)."""

    def __init__(self, given: aiohttp.ClientSession | None = None) -> None:
        self._session = given
        self._owned = given is None

    def get(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = client_session()
        return self._session

    async def aclose(self) -> None:
        if self._owned and self._session is not None:
            await self._session.close()
            self._session = None
