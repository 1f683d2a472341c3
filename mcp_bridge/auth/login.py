"""The browser login: the authorization-code grant with PKCE through a loopback redirect
(RFC 8252), from an MCP server URL (and maybe its 401/403 challenge) to a LoginResult.
Composes the sign-in steps every login shares (sign_in.py: discovery, scopes, quirks,
client id) with the authorization request, the loopback listener, the browser opener and
the code exchange; knows nothing of the vault beyond the `ClientStore` it is handed.

Order of play (`BrowserLogin.run`), after the shared steps, each the spec's rule (MCP
2026-07-28, the "Authorization" pages):
1. bind the loopback listener, so the redirect URI is known before registering (redirect
   URIs MUST be registered with the AS), then get the client id;
2. PKCE S256 + state + resource + the expected issuer recorded before redirecting, the
   URL published, our browser tab opened unless a client shows the URL (url_showing.py),
   one callback accepted and validated (`state`, then
   RFC 9207 `iss`: "Authorization Response Validation");
3. the code exchanged for tokens only after that validation: a hostile AS (wrong iss, no
   PKCE, a javascript: endpoint...) is refused before anything is spent.
An `invalid_target` error redirect (RFC 8707 §2) gets the round once more without `resource`.

How often a login may start is not decided here: that is the provider's storm brake
(login_brake.py).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace
from urllib.parse import urlsplit

from mcp_bridge.auth.authorize import build_authorization_request, validate_callback
from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.dpop import jwk_thumbprint
from mcp_bridge.auth.dpop_proofs import DpopProofs
from mcp_bridge.auth.errors import AuthError, AuthorizationDenied, CallbackRejected
from mcp_bridge.auth.http_step import run_step
from mcp_bridge.auth.loopback import CALLBACK_PATH, CallbackHost, CallbackWait, LoopbackListener
from mcp_bridge.auth.sign_in import SignInPlan, SignInSteps
from mcp_bridge.auth.token_endpoint import exchange_code
from mcp_bridge.auth.token_manager import LoginResult
from mcp_bridge.auth.url_showing import PASTE_OFFER

__all__ = ["BrowserLogin", "registered_callback_port"]

log = logging.getLogger(__name__)


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


class BrowserLogin(SignInSteps):
    """One server's browser login (`run`). Holds no state between runs, so one serves
    every login of its server."""

    _waiting: CallbackWait[str] | None = None  # the callback the running login waits for

    @property
    def takes_pasted(self) -> bool:
        return self._waiting is not None

    def take_pasted(self, url: str) -> None:
        """Judge a pasted address as the waiting login's callback, by the same rules as a
        redirect to the listener (CallbackWait.submit_pasted): the login ends with its
        verdict, an AS's refusal (error=...) included. CallbackRejected: not this login's
        address, and the login waits on."""
        if self._waiting is None:
            super().take_pasted(url)
            return
        self._waiting.submit_pasted(url)

    async def _grant(self, plan: SignInPlan) -> LoginResult:
        """The browser's part of `run`; see the module docstring."""
        dpop = await self.dpop_proofs(plan.context, plan.challenge)
        try:
            return await self._authorize(plan, dpop)
        except AuthorizationDenied as exc:
            if not exc.refuses_resource or not plan.quirks.send_resource:
                raise
        # RFC 8707 invalid_target: the AS (Microsoft Entra ID among them) issues nothing
        # for the resource we named. Once more without it; the token still goes to our
        # resource only, and the issuer is remembered as one that takes no `resource`.
        log.info("%s refused the resource indicator; signing in without it", plan.context.issuer)
        without = replace(plan.quirks, send_resource=False)
        return await self._authorize(replace(plan, quirks=without), dpop)

    async def _authorize(self, plan: SignInPlan, dpop: DpopProofs | None) -> LoginResult:
        """One authorization-code round: the browser, the callback, the code exchange."""
        context, scopes, settings = plan.context, plan.scopes, self.settings
        reusable = await self.reusable_client(context.issuer, scopes)
        port = registered_callback_port(reusable, settings.callback_host)
        listener = await self._listen(preferred_port=port)
        try:
            client = await self.client_for(context, listener.redirect_uri, scopes, reusable)
            request = build_authorization_request(
                context,
                client,
                redirect_uri=listener.redirect_uri,
                scopes=scopes,
                policy=self._policy,
                extra_params=dict(settings.authorize_params),
                quirks=plan.quirks,
                dpop_jkt=None if dpop is None else jwk_thumbprint(dpop.key.public_jwk),
            )
            pending = request.pending
            waiting = listener.expect(
                pending.state, lambda query: validate_callback(pending, query)
            )
            self._waiting = waiting
            tab = self._publish(request.url, tab_url=request.url)
            await self._show(request.url, tab=tab)
            code = await self._wait(waiting)
        finally:
            self._waiting = None
            self._withdraw()
            await listener.aclose()
        step = exchange_code(
            context.auth_server,
            client,
            pending,
            code,
            now=self._clock(),
            use_id_token=settings.use_id_token,
            dpop=dpop,
        )
        tokens = await run_step(step, self._session(), policy=self._policy)
        log.info("logged in to %s at %s (scopes: %s)", self.mcp_url, context.issuer, scopes)
        return LoginResult(context, client, tokens)

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

    async def _show(self, url: str, *, tab: bool) -> None:
        """Tell the user of `url`, in our browser tab when `tab` (UrlShowing decided)."""
        if tab and await self.open_tab(url):
            # The URL too: the browser that opened may not be the one (or the profile)
            # the person signs in with.
            self._notify(
                f"mcp-bridge: sign in to {self.mcp_url} in the browser window just opened, "
                f"or open this URL in another:\n{url}"
            )
            return
        paste = PASTE_OFFER if self._pasted_urls else ""
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
