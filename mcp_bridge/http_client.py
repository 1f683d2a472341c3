"""The one place an aiohttp client session is made (used by both `remote` and `auth`, so it
sits at the bottom layer with `paths`): OS trust store, proxies from the
environment, and timeouts that suit long-lived MCP streams.

Proxies: every request passes `proxy`/`proxy_auth` from `proxy_for(url)`. aiohttp's own
`trust_env=True` would look the environment (and ~/.netrc) up again on every request in a
worker thread: two thread hops per MCP call, half the daemon's CPU per call. The
answer for a host does not change while the process runs, so it is looked up once. (That
also ends aiohttp's use of ~/.netrc passwords as HTTP Basic credentials for MCP servers:
`--header 'Authorization: Basic ...'` says so explicitly; a proxy's netrc entry still
applies.)"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    import aiohttp
    import yarl

# Connecting should be quick; reading may legitimately wait minutes (a long tool call, an
# idle SSE stream), so only the connect phase has a deadline here. Callers that need a
# total deadline (metadata fetches) pass their own.
CONNECT_TIMEOUT_S = 30.0
USER_AGENT = "mcp-bridge"
# A pooled connection idle this long is closed rather than reused. Servers close idle
# keep-alive connections too (uvicorn, under the MCP SDKs' servers, after 5 s), and a
# request sent as their close crosses it on the wire fails with "Server disconnected": a
# POST cannot then be sent again (it may have run, RFC 9112 §9.3.1), so a tool call would
# fail. Letting go first (aiohttp would keep them 15 s) costs a new connection for calls
# more than this far apart.
IDLE_CONNECTION_S = 4.0


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
    connector = aiohttp.TCPConnector(ssl=tls_context(), keepalive_timeout=IDLE_CONNECTION_S)
    return aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        trust_env=False,  # proxies come from proxy_for, per request
        headers={"User-Agent": USER_AGENT},
        read_bufsize=2**16,
    )


class ProxyChoice(NamedTuple):
    """The `proxy` and `proxy_auth` arguments of an aiohttp request."""

    proxy: yarl.URL | None
    proxy_auth: aiohttp.BasicAuth | None


_NO_PROXY = ProxyChoice(None, None)
_chosen: dict[tuple[str, str | None, int | None], ProxyChoice] = {}
# The same choices by URL text, so a request to a URL seen before parses nothing; bounded,
# as legacy SSE endpoints carry a session id in their query.
_chosen_by_url: dict[str, ProxyChoice] = {}
_URLS_REMEMBERED = 256


def proxy_for(url: str | yarl.URL) -> ProxyChoice:
    """The proxy HTTP_PROXY / HTTPS_PROXY / NO_PROXY (and the OS settings where Python
    reads them) name for `url`, as aiohttp's trust_env chose it; looked up once per
    scheme, host and port (the first lookup may read files: ~/.netrc for proxy
    credentials, the system proxy settings on macOS)."""
    if isinstance(url, str) and (known := _chosen_by_url.get(url)) is not None:
        return known
    import yarl
    from aiohttp.helpers import get_env_proxy_for_url

    target = yarl.URL(url) if isinstance(url, str) else url
    key = (target.scheme, target.host, target.port)
    choice = _chosen.get(key)
    if choice is None:
        try:
            choice = ProxyChoice(*get_env_proxy_for_url(target))
        except LookupError:  # no proxy for this scheme, or NO_PROXY names the host
            choice = _NO_PROXY
        _chosen[key] = choice
    if isinstance(url, str):
        if len(_chosen_by_url) >= _URLS_REMEMBERED:
            _chosen_by_url.clear()
        _chosen_by_url[url] = choice
    return choice


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
