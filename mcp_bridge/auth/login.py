"""The interactive login: from an MCP server URL (and maybe its 401/403 challenge) to a
TokenSet, through the user's browser. Composes the sans-I/O steps (discovery, registration,
authorization request, callback validation, code exchange) with the loopback listener and the
browser opener; knows nothing of the vault beyond the `ClientStore` it is handed.

Order of play (`BrowserLogin.run`), each step the spec's rule (MCP 2026-07-28, the
"Authorization" pages):
1. discover the AS ("Authorization Server Discovery"; from the challenge when there is one);
2. the scopes: `--scope` if set, else challenge > PRM scopes_supported > none, unioned with
   the previous grant on step-up ("Scope Selection Strategy", "Step-Up Authorization
   Flow"), plus offline_access where the AS lists it;
3. bind the loopback listener, so the redirect URI is known before registering (redirect
   URIs MUST be registered with the AS);
4. a client id: pre-registered > CIMD > stored DCR for this issuer > new DCR ("Client
   Registration"), a new registration saved at once;
5. PKCE S256 + state + resource + the expected issuer recorded before redirecting, the
   browser opened (or the URL shown), one callback accepted and validated (`state`, then
   RFC 9207 `iss`: "Authorization Response Validation");
6. the code exchanged for tokens only after that validation: a hostile AS (wrong iss, no
   PKCE, a javascript: endpoint...) is refused before anything is spent.

How often a login may start is not decided here: that is the provider's storm brake
(login_brake.py).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

from mcp_bridge.auth.auth_records import StoredClient
from mcp_bridge.auth.authorize import build_authorization_request, validate_callback
from mcp_bridge.auth.browser import open_in_browser
from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.device_grant import (
    MAX_INTERVAL_S,
    SLOW_DOWN_STEP_S,
    DeviceClientMetadata,
    DevicePoll,
    poll_device_token,
    request_device_code,
)
from mcp_bridge.auth.discovery import AuthorizationContext, AuthServerQuirks, discover
from mcp_bridge.auth.dpop import login_binds_tokens
from mcp_bridge.auth.dpop_proofs import DpopProofs, ServerDpop
from mcp_bridge.auth.errors import (
    AuthError,
    AuthorizationDenied,
    CallbackRejected,
    sanitize_remote_text,
)
from mcp_bridge.auth.http_step import SessionSource, run_step
from mcp_bridge.auth.loopback import CALLBACK_PATH, CallbackHost, CallbackWait, LoopbackListener
from mcp_bridge.auth.registration import (
    ClientMetadata,
    ClientRegistration,
    RegistrationMethod,
    obtain_client,
)
from mcp_bridge.auth.scopes import login_scopes, scope_param
from mcp_bridge.auth.settings import OAuthSettings
from mcp_bridge.auth.token_endpoint import exchange_code
from mcp_bridge.auth.token_manager import LoginResult
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.http_client import proxy_for

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "PROBE_BODY",
    "PROBE_HEADERS",
    "BrowserLogin",
    "ClientStore",
    "Notify",
    "PastedUrls",
    "chosen_scopes",
    "fetch_challenge",
    "notify_on_stderr",
    "registered_callback_port",
]

log = logging.getLogger(__name__)

# The device grant needs no redirect, but registration (and the SDK's AS) wants one; a fixed
# loopback URI keeps a device-login registration reusable (registration.is_usable).
DEVICE_REDIRECT_URI = "http://127.0.0.1/callback"

# Tells the user something they must act on (the URL to open); never given a secret.
Notify = Callable[[str], None]
# Lines the user pastes (the redirect URL from another machine's browser); None at the end.
PastedUrls = Callable[[], AsyncIterator[str]]


def notify_on_stderr(text: str) -> None:
    """The default `Notify`: stderr (stdout carries JSON-RPC in `run`)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# A request any MCP server must authorize before answering: its 401 names the scopes and the
# PRM location (MCP Authorization Server Discovery). `ping` opens no session, unlike `initialize`.
PROBE_BODY = b'{"jsonrpc":"2.0","id":"mcp-bridge-login-probe","method":"ping"}'
PROBE_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
}
_PROBE_TIMEOUT_S = 30.0


async def fetch_challenge(
    mcp_url: str, http: aiohttp.ClientSession, policy: UrlPolicy
) -> BearerChallenge | None:
    """The Bearer challenge the server answers an unauthenticated request with, or None
    (no 401, no challenge, or unreachable: discovery then uses the well-known URLs)."""
    import aiohttp

    policy.check_fetch(mcp_url, role="MCP server")
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            proxy = proxy_for(mcp_url)
            async with http.post(
                mcp_url,
                data=PROBE_BODY,
                headers=PROBE_HEADERS,
                allow_redirects=False,
                proxy=proxy.proxy,
                proxy_auth=proxy.proxy_auth,
            ) as response:
                if response.status != 401:
                    return None
                challenges = ", ".join(response.headers.getall("WWW-Authenticate", ()))
                return BearerChallenge.from_header(challenges)
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.debug("no challenge from %s: %s", mcp_url, exc)
        return None


def chosen_scopes(
    settings: OAuthSettings, context: AuthorizationContext, previous: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The scopes a login asks for: `--scope` when given, plus what a step-up challenge
    asks (dropping the challenged scope makes the server answer 403 again,
    docs/oauth-in-the-wild.md §3); else the spec's rules (scopes.login_scopes)."""
    return login_scopes(context, previous=previous, configured=settings.scopes)


def registered_callback_port(stored: ClientRegistration | None, host: CallbackHost) -> int:
    """The callback port a kept dynamic registration was made for, so it can be used
    again: the AS matches redirect URIs exactly, and a new port means a new client each
    login ("DCR churn", docs/oauth-in-the-wild.md §4). 0 when there is none to follow."""
    if stored is None or stored.method is not RegistrationMethod.DCR:
        return 0
    for uri in stored.redirect_uris:
        parts = urlsplit(uri)
        if (
            parts.scheme == "http"
            and parts.hostname == host.value
            and parts.path == CALLBACK_PATH
            and parts.port is not None
        ):
            return parts.port
    return 0


class ClientStore(Protocol):
    """Where registrations live (TokenManager implements it)."""

    async def stored_client(self, issuer: str) -> StoredClient | None: ...

    async def save_client(self, client: ClientRegistration, scopes: tuple[str, ...]) -> None: ...


class BrowserLogin:
    """One server's login: the browser (authorization-code grant with PKCE, `run`) or the
    device grant (`run_device`). Holds no state between runs, so one serves every login."""

    def __init__(
        self,
        mcp_url: str,
        settings: OAuthSettings,
        clients: ClientStore,
        *,
        policy: UrlPolicy,
        http: SessionSource,
        notify: Notify = notify_on_stderr,
        pasted_urls: PastedUrls | None = None,
        clock: Callable[[], float] = time.time,
        dpop: ServerDpop | None = None,
    ) -> None:
        self.mcp_url = mcp_url
        self.settings = settings
        self._clients = clients
        self._dpop = dpop  # where the server's DPoP key is kept; None: tokens stay Bearer
        self._policy = policy
        self._session = http
        self._notify = notify
        # The authorization URL of the login waiting for the browser, if one is: a request
        # that cannot wait for it any longer hands it to the client (provider.py).
        self.pending_url: str | None = None
        self.url_shown = asyncio.Event()
        self._pasted_urls = pasted_urls
        self._clock = clock

    async def discover(
        self, challenge: BearerChallenge | None, *, preferred_issuer: str | None = None
    ) -> AuthorizationContext:
        step = discover(self.mcp_url, challenge, self._policy, preferred_issuer=preferred_issuer)
        return await run_step(step, self._session(), policy=self._policy)

    def scopes_for(
        self, context: AuthorizationContext, previous: tuple[str, ...]
    ) -> tuple[str, ...]:
        return chosen_scopes(self.settings, context, previous)

    async def run(
        self,
        challenge: BearerChallenge | None = None,
        *,
        previous_scopes: tuple[str, ...] = (),
        preferred_issuer: str | None = None,
    ) -> LoginResult:
        """Log in through the browser; see the module docstring. Raises AuthError
        subclasses (the refusal of a hostile AS among them) and ConfigError."""
        context = await self.discover(challenge, preferred_issuer=preferred_issuer)
        scopes = self.scopes_for(context, previous_scopes)
        stored = await self._clients.stored_client(context.issuer)
        quirks = stored.quirks if stored is not None else AuthServerQuirks()
        dpop = await self._dpop_proofs(context, challenge)
        try:
            return await self._authorize(context, scopes, quirks, dpop)
        except AuthorizationDenied as exc:
            if not exc.refuses_resource or not quirks.send_resource:
                raise
        # RFC 8707 invalid_target: the AS (Microsoft Entra ID among them) issues nothing
        # for the resource we named. Once more without it; the token still goes to our
        # resource only, and the issuer is remembered as one that takes no `resource`.
        log.info("%s refused the resource indicator; signing in without it", context.issuer)
        return await self._authorize(context, scopes, replace(quirks, send_resource=False), dpop)

    async def _dpop_proofs(
        self, context: AuthorizationContext, challenge: BearerChallenge | None
    ) -> DpopProofs | None:
        """The proofs for the code exchange when the server asks for DPoP-bound tokens
        (dpop.login_binds_tokens): the server's kept key, or a new one saved first."""
        algs = context.auth_server.dpop_signing_alg_values_supported
        if self._dpop is None or not login_binds_tokens(algs, challenge):
            return None
        return await self._dpop.ensure()

    async def _authorize(
        self,
        context: AuthorizationContext,
        scopes: tuple[str, ...],
        quirks: AuthServerQuirks,
        dpop: DpopProofs | None,
    ) -> LoginResult:
        """One authorization-code round: the browser, the callback, the code exchange."""
        settings = self.settings
        reusable = await self._reusable_client(context.issuer, scopes)
        port = registered_callback_port(reusable, settings.callback_host)
        listener = await self._listen(preferred_port=port)
        try:
            client = await self._client_for(context, listener.redirect_uri, scopes, reusable)
            request = build_authorization_request(
                context,
                client,
                redirect_uri=listener.redirect_uri,
                scopes=scopes,
                policy=self._policy,
                extra_params=dict(settings.authorize_params),
                quirks=quirks,
            )
            pending = request.pending
            waiting = listener.expect(
                pending.state, lambda query: validate_callback(pending, query)
            )
            self.pending_url = request.url
            self.url_shown.set()
            await self._show(request.url)
            code = await self._wait(waiting)
        finally:
            self.pending_url = None
            self.url_shown.clear()
            await listener.aclose()
        step = exchange_code(
            context.auth_server, client, pending, code, now=self._clock(), dpop=dpop
        )
        tokens = await run_step(step, self._session(), policy=self._policy)
        log.info("logged in to %s at %s (scopes: %s)", self.mcp_url, context.issuer, scopes)
        return LoginResult(context, client, tokens)

    async def run_device(
        self,
        challenge: BearerChallenge | None = None,
        *,
        previous_scopes: tuple[str, ...] = (),
        preferred_issuer: str | None = None,
    ) -> LoginResult:
        """Log in with the device grant (RFC 8628, `--device`): the user opens a URL on any
        device and enters a code while we poll. Raises AuthError when the AS offers no
        device login, the user refuses, or the code (or `settings.timeout_s`) runs out."""
        context = await self.discover(challenge, preferred_issuer=preferred_issuer)
        scopes = self.scopes_for(context, previous_scopes)
        metadata = context.auth_server
        # request_device_code checks this too; asking first spares a registration.
        if metadata.device_authorization_endpoint is None:
            raise AuthError(
                f"The authorization server {metadata.issuer} offers no device login",
                next_step="Log in without --device (the browser login)",
            )
        reusable = await self._reusable_client(context.issuer, scopes)
        client = await self._client_for(context, DEVICE_REDIRECT_URI, scopes, reusable, device=True)
        step = request_device_code(
            metadata, client, scopes=scopes, resource=context.resource, now=self._clock()
        )
        device = await run_step(step, self._session(), policy=self._policy)
        where = sanitize_remote_text(device.verification_uri, max_chars=500)
        self._notify(
            f"mcp-bridge: to sign in to {self.mcp_url}, open {where} on any device "
            f"and enter the code {device.user_code}"
        )
        if self.settings.open_browser and device.verification_uri_complete is not None:
            try:
                await open_in_browser(
                    device.verification_uri_complete, allow_http=self.settings.allow_http
                )
            except AuthError as exc:  # a URL we will not open: the user types the code
                log.info("not opening the device verification URL: %s", exc)
        interval_s = device.interval_s
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                while True:
                    await asyncio.sleep(interval_s)
                    if self._clock() >= device.expires_at:
                        raise AuthError(
                            "The device code expired before the sign-in was finished",
                            next_step="Run the login again and finish it sooner",
                        )
                    poll = poll_device_token(
                        metadata,
                        client,
                        device,
                        resource=context.resource,
                        scopes=scopes,
                        now=self._clock(),
                    )
                    result = await run_step(poll, self._session(), policy=self._policy)
                    if result is DevicePoll.SLOW_DOWN:
                        # RFC 8628 §3.5 adds 5 s per slow_down; an AS that says it forever
                        # must not stretch the polling past the clamp of the interval.
                        interval_s = min(interval_s + SLOW_DOWN_STEP_S, MAX_INTERVAL_S)
                    elif isinstance(result, TokenSet):
                        log.info("logged in to %s at %s (device)", self.mcp_url, context.issuer)
                        return LoginResult(context, client, result)
        except TimeoutError:
            raise AuthError(
                f"No device sign-in within {self.settings.timeout_s:.0f} s",
                next_step=f"Run `mcp-bridge login {self.mcp_url} --device` again",
            ) from None

    async def _reusable_client(
        self, issuer: str, scopes: tuple[str, ...]
    ) -> ClientRegistration | None:
        """The kept registration for `issuer`, if it was made for these scopes (an AS may
        grant only the scopes a client registered with)."""
        stored = await self._clients.stored_client(issuer)
        return stored.registration if stored is not None and stored.covers(scopes) else None

    async def _client_for(
        self,
        context: AuthorizationContext,
        redirect_uri: str,
        scopes: tuple[str, ...],
        stored: ClientRegistration | None,
        *,
        device: bool = False,
    ) -> ClientRegistration:
        kind = DeviceClientMetadata if device else ClientMetadata
        metadata = kind(redirect_uris=(redirect_uri,), scope=scope_param(scopes))
        step = obtain_client(
            context.auth_server,
            metadata,
            stored=stored,
            pre_registered=self.settings.pre_registered(),
            client_metadata_url=self.settings.client_metadata_url,
            now=self._clock(),
        )
        client = await run_step(step, self._session(), policy=self._policy)
        if client != stored:
            await self._clients.save_client(client, scopes)
        return client

    async def _listen(self, *, preferred_port: int) -> LoopbackListener:
        """A started listener: on `--callback-port` if set, else on `preferred_port` if it
        is free, else on an ephemeral port."""
        settings = self.settings
        ports = [settings.callback_port]
        if settings.callback_port == 0 and preferred_port:
            ports.insert(0, preferred_port)
        for port in ports:
            listener = LoopbackListener(
                host=settings.callback_host,
                port=port,
                timeout_s=settings.timeout_s,
                server=self.mcp_url,
            )
            try:
                await listener.start()
            except AuthError:
                if port == ports[-1]:
                    raise
                log.debug("callback port %d is taken; using another", port)
                continue
            return listener
        raise AssertionError("unreachable: the last port either binds or raises")

    async def _show(self, url: str) -> None:
        opened = False
        if self.settings.open_browser:
            opened = await open_in_browser(url, allow_http=self.settings.allow_http)
        if opened:
            # The URL too: the browser that opened may not be the one (or the profile)
            # the person signs in with.
            self._notify(
                f"mcp-bridge: sign in to {self.mcp_url} in the browser window just opened, "
                f"or open this URL in another:\n{url}"
            )
            return
        paste = " or paste the address the browser ends on here" if self._pasted_urls else ""
        self._notify(
            f"mcp-bridge: to sign in to {self.mcp_url}, open this URL in a browser{paste}:\n{url}"
        )

    async def _wait(self, waiting: CallbackWait[str]) -> str:
        if self._pasted_urls is None:
            return await waiting.result()
        reader = asyncio.create_task(self._read_pasted(waiting))
        try:
            return await waiting.result()
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    async def _read_pasted(self, waiting: CallbackWait[str]) -> None:
        assert self._pasted_urls is not None
        async for line in self._pasted_urls():
            if not line.strip():
                continue
            try:
                waiting.submit_pasted(line)
                return
            except CallbackRejected as exc:
                self._notify(f"mcp-bridge: {exc}")
            except AuthError as exc:
                self._notify(f"mcp-bridge: {exc}")
                return
