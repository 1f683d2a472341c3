"""The HTTP plumbing every remote transport shares: one URL, its headers (`--header` values
and the credential provider's), the aiohttp session, backoff after connection failures, and
the one retry the provider may ask for after a 401 or 403.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from mcp_bridge import jsonrpc
from mcp_bridge.errors import AuthError, BridgeError
from mcp_bridge.http_client import CONNECT_TIMEOUT_S, SessionHolder, proxy_for
from mcp_bridge.jsonrpc import REMOTE_UNAVAILABLE
from mcp_bridge.protocol import SIGN_IN_URL_DATA
from mcp_bridge.remote.backoff import ReconnectBackoff
from mcp_bridge.remote.base import CredentialProvider, NoCredentials
from mcp_bridge.remote.heap import keep_large_blocks_out_of_the_heap
from mcp_bridge.remote.response_body import (
    RequestFailed,
    connection_errors,
    silent,
    unreachable,
)

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)


DPOP_NONCE = "DPoP-Nonce"


@dataclass(slots=True)
class AuthRetries:
    """One exchange's allowance: a retry after a 401 and one after a 403, each only if the
    credential provider says it recovered (new token, step-up done). A 401 that brings a
    DPoP nonce (RFC 9449 §9, `use_dpop_nonce`) has one retry of its own: the first request
    after a login may meet the resource's nonce challenge with the login's retry spent.
    A 401 to the retry after a recovery (and no nonce challenge) is the provider's to
    explain (`on_retry_refused`)."""

    credentials: CredentialProvider
    tried_401: bool = False
    tried_403: bool = False
    tried_nonce: bool = False
    retried_401: bool = False

    async def should_retry(self, response: aiohttp.ClientResponse) -> bool:
        """Raises RequestFailed, with the provider's own words, when it cannot recover
        (no login possible here, the user must act): the request is answered, not lost."""
        if response.status not in (401, 403):
            return False
        # Several challenges may come in several fields (RFC 9110 §11.6.1), e.g. Bearer
        # and DPoP (RFC 9449 §7.1): one list, as §5.3 allows combining them.
        challenge = ", ".join(response.headers.getall("WWW-Authenticate", ())) or None
        # The server's challenge names what it wants (scopes, metadata URL); no secret.
        log.debug("%s answered %d: %s", response.url, response.status, challenge)
        with provider_failures_as_request_failures():
            if response.status == 401 and self.retried_401 and DPOP_NONCE not in response.headers:
                await self.credentials.on_retry_refused(challenge)
            if response.status == 401 and self._may_retry_401(response):
                recovered = await self.credentials.on_unauthorized(challenge)
                self.retried_401 = recovered
                return recovered
            if response.status == 403 and not self.tried_403:
                self.tried_403 = True
                return await self.credentials.on_forbidden(challenge)
        return False

    def _may_retry_401(self, response: aiohttp.ClientResponse) -> bool:
        if DPOP_NONCE in response.headers and not self.tried_nonce:
            self.tried_nonce = True
            return True
        if self.tried_401:
            return False
        self.tried_401 = True
        return True


@contextlib.contextmanager
def provider_failures_as_request_failures() -> Iterator[None]:
    """The credential provider speaks BridgeError (log in, unlock the keyring...); a
    transport answers requests with RequestFailed. This is the one translation."""
    try:
        yield
    except RequestFailed:
        raise
    except BridgeError as exc:
        # A sign-in the request waited for travels with the error, so a client that can
        # open URLs is handed it (engine/front_channel.py).
        url = exc.sign_in_url if isinstance(exc, AuthError) else None
        data = {SIGN_IN_URL_DATA: url} if url else None
        raise RequestFailed(
            exc.what, code=REMOTE_UNAVAILABLE, next_step=exc.next_step, data=data
        ) from exc


# The largest message taken from the remote (one JSON body, one SSE event). Generous: a
# 20 MB tool result is legitimate (the SDK's own 1 MiB SSE cap breaks those); what it stops
# is a remote that would take all memory (an endless `data:` line).
DEFAULT_MAX_MESSAGE_BYTES = 64 << 20

# How long a request may go without a byte from the server (headers, body, SSE keep-alive)
# before it is given up as failed; the SDK's client allows the same 300 s. Streams that may
# idle for good (the legacy GET stream, HTTP+SSE) open with `may_idle`.
READ_TIMEOUT_S = 300.0


@dataclass(frozen=True, slots=True)
class ConnectOptions:
    """How to reach the remote, besides its URL; the same for every transport.

    `static_headers` (from `--header`) go on every request; `credentials` adds its headers
    to every request and is told about 401/403; `http` is a shared session (closed by its
    owner), and without one each endpoint makes its own in start() and closes it. A
    message from the remote over `max_message_bytes` fails the request it answered."""

    credentials: CredentialProvider | None = None
    static_headers: Mapping[str, str] = field(default_factory=dict)
    http: aiohttp.ClientSession | None = None
    read_timeout_s: float = READ_TIMEOUT_S  # a request silent this long fails
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class OutgoingHeaders:
    """A request's headers but the credential provider's, which `HttpEndpoint.open` adds
    for each hop between `base` (Accept, `--header` values) and `layers` (protocol
    headers, the caller's per-message ones)."""

    base: Mapping[str, str]
    layers: Mapping[str, str]


MAX_REDIRECTS = 3
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(url: str) -> tuple[str, str | None, int | None]:
    """Scheme, host and port, the port filled in from the scheme when not written out."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:  # a Location with a port out of range or not a number
        return parts.scheme, None, None
    return parts.scheme, parts.hostname, port or _DEFAULT_PORTS.get(parts.scheme)


def _same_site(origin_url: str, location: str) -> bool:
    """Whether a redirect may take our headers (`--header` credentials included) along: the
    same origin (scheme, host, port), or the same host moving from http on its default port
    to https on its default port, the one upgrade that keeps what we send as safe as before.
    http -> https on other ports is another origin: another program may listen there."""
    before, after = _origin(origin_url), _origin(location)
    if before[1] is None or after[1] is None or before[1] != after[1]:
        return False
    if before == after:
        return True
    return before[0::2] == ("http", 80) and after[0::2] == ("https", 443)


class HttpEndpoint:
    """Requests to one remote URL, reached as `options` say."""

    def __init__(self, url: str, options: ConnectOptions) -> None:
        self.url = url
        self.read_timeout_s = options.read_timeout_s
        self.max_message_bytes = options.max_message_bytes
        self.credentials: CredentialProvider = options.credentials or NoCredentials()
        self._static_headers = dict(options.static_headers)
        self._http = SessionHolder(options.http)
        self._backoff = ReconnectBackoff()

    def start(self) -> None:
        keep_large_blocks_out_of_the_heap()
        self._http.get()  # made here, inside the running loop, not on the first request

    async def close(self) -> None:
        await self._http.aclose()

    def auth_retries(self) -> AuthRetries:
        return AuthRetries(self.credentials)

    def headers(self, accept: str, *layers: Mapping[str, str] | None) -> OutgoingHeaders:
        """A request's headers, the provider's to be added by `open` (for each hop)."""
        merged: dict[str, str] = {}
        for layer in layers:
            merged.update(layer or {})
        return OutgoingHeaders({"Accept": accept, **self._static_headers}, merged)

    async def _with_credentials(
        self, method: str, url: str, headers: OutgoingHeaders
    ) -> dict[str, str]:
        """`--header` values, then the provider's, then the layers: later wins, so
        protocol headers beat `--header` and a caller's per-message headers beat both."""
        with provider_failures_as_request_failures():
            provided = await self.credentials.headers(method, url)
        return {**headers.base, **provided, **headers.layers}

    async def open(
        self,
        method: str,
        headers: OutgoingHeaders,
        body: bytes | None = None,
        *,
        url: str | None = None,
        may_idle: bool = False,
        silence_timeout_s: float | None = None,
    ) -> aiohttp.ClientResponse:
        """Send one request (to `url`, default the endpoint's) and return the response with
        its body unread; the caller releases it. Waits out the backoff after consecutive
        connection failures. Raises RequestFailed when the remote cannot be reached, or goes
        silent for `read_timeout_s` (unless `may_idle`: a stream that waits for events;
        `silence_timeout_s` overrides it for this one request)."""
        import aiohttp

        read_timeout_s = None if may_idle else (silence_timeout_s or self.read_timeout_s)
        timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=CONNECT_TIMEOUT_S, sock_read=read_timeout_s
        )
        await self._backoff.wait()
        target = url or self.url
        for _ in range(MAX_REDIRECTS + 1):
            sent = await self._with_credentials(method, target, headers)
            try:
                # Redirects are judged here, hop by hop, not followed blindly (MCP Security Best
                # Practices, SSRF: a hop may lead our --header values elsewhere).
                response = await self._send(method, target, sent, body, timeout)
            except TimeoutError as exc:
                self._backoff.failed()
                raise silent(self.url, read_timeout_s or self.read_timeout_s) from exc
            except connection_errors() as exc:
                self._backoff.failed()
                raise unreachable(self.url, exc) from exc
            except ValueError as exc:  # aiohttp refuses a header value (CR, LF, NUL...)
                raise RequestFailed(
                    f"mcp-bridge could not send a request to {self.url}: {exc}",
                    code=jsonrpc.INTERNAL_ERROR,
                    next_step="Check the --header values; if they are fine, report this",
                ) from exc
            self._backoff.succeeded()
            if (nonce := response.headers.get(DPOP_NONCE)) is not None:
                self.credentials.on_dpop_nonce(target, nonce)
            if response.status not in REDIRECT_STATUSES:
                return response
            location = urljoin(target, response.headers.get("Location", ""))
            response.release()
            if response.status not in (307, 308) or not _same_site(target, location):
                raise RequestFailed(
                    f"The MCP server at {self.url} redirected ({response.status}) to "
                    f"{location}; mcp-bridge follows only 307/308 within the same origin",
                    code=REMOTE_UNAVAILABLE,
                    next_step="If you trust the new address, configure it instead",
                )
            log.info("%s redirected to %s", target, location)
            target = location
        raise RequestFailed(
            f"The MCP server at {self.url} redirected more than {MAX_REDIRECTS} times",
            code=REMOTE_UNAVAILABLE,
            next_step="Tell the server's owner",
        )

    async def _send(
        self,
        method: str,
        target: str,
        headers: Mapping[str, str],
        body: bytes | None,
        client_timeout: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        proxy = proxy_for(target)
        for attempt in (1, 2):
            try:
                return await self._http.get().request(
                    method,
                    target,
                    headers=headers,
                    data=body,
                    timeout=client_timeout,
                    allow_redirects=False,
                    proxy=proxy.proxy,
                    proxy_auth=proxy.proxy_auth,
                )
            except connection_errors() as exc:
                if attempt == 2 or not _never_sent(exc):
                    raise
                # A pooled connection the server had closed (it restarted, or its idle
                # timeout struck): the body could not be written, so the server has not
                # read a whole request, and sending it again cannot run it twice.
                log.debug("%s: resending on a fresh connection: %s", target, exc)
        raise AssertionError("unreachable: the second attempt returns or raises")


def _never_sent(exc: BaseException) -> bool:
    """aiohttp could not write the request (its body) to the connection."""
    import aiohttp

    return isinstance(exc, aiohttp.ClientOSError) and "request body" in str(exc)
