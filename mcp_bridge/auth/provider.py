"""OAuthCredentials: the CredentialProvider (remote/base.py) for an OAuth-protected server,
on top of the TokenManager (tokens, refresh) and the LoginCoordinator (which login, one at a
time, braked, waited for within the request's patience: login_coordinator.py). It answers
each request's headers and decides, from the resource's 401s and 403s, what is needed.

What each call does:
- `headers(method, url)`: the bearer of a valid held token, with no lock, no I/O and no
  await on the fast path; for DPoP-bound tokens the DPoP scheme and a proof made for that
  one request (a signature, still no I/O: docs/dpop.md). Without a usable token it loads
  or refreshes; without any login it returns no header, and the resource's 401 (with its
  challenge: scopes, resource_metadata) starts what is needed. A process that merely
  starts never starts a login: hosts start copies they never use (docs/desktop-hosts.md,
  "Extra copies, probes and early kills").
- `on_unauthorized(challenge)`: refresh (shared with concurrent callers); when no refresh
  can help, one browser login per server (single-flight, storm-braked) if `interactive`,
  else LoginRequired naming the command to run. A DPoP `use_dpop_nonce` needs neither:
  the retry names the nonce that `on_dpop_nonce` kept from the same answer.
- `on_retry_refused(challenge)`: the retry after a login met a 401 too, so the server
  refused the token at once: the error says what to change (refused_login.py), and every
  later 401 gets the same answer instead of a refresh or another login, until a login
  or new settings.
- `on_forbidden(challenge)`: step-up on `insufficient_scope` (MCP Authorization, "Step-Up
  Authorization Flow"): a login for the
  union of the granted and the challenged scopes, within a budget per resource and scope
  set (scopes.StepUpBudget), then a clear error instead of a loop.

A request never waits for a browser longer than `settings.login_wait_s` (the coordinator's
rule). Every failure is an AuthError subclass; the transport turns it into a JSON-RPC error
for that request only.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.errors import LoginRequired
from mcp_bridge.auth.login_coordinator import LoginCoordinator, what_to_do
from mcp_bridge.auth.machine_login import MachineLogin
from mcp_bridge.auth.refused_login import FreshLoginWatch
from mcp_bridge.auth.scopes import StepUpBudget
from mcp_bridge.auth.settings import OAuthSettings
from mcp_bridge.auth.shared_login import as_auth_errors, login_lock_path
from mcp_bridge.auth.sign_in import (
    Notify,
    PastedUrls,
    fetch_challenge,
    notify_on_stderr,
    probe_server,
)
from mcp_bridge.auth.token_manager import LoginResult, TokenManager
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.errors import BridgeError
from mcp_bridge.http_client import SessionHolder
from mcp_bridge.paths import BridgePaths, bridge_paths
from mcp_bridge.store.base import CredentialVault

if TYPE_CHECKING:
    import aiohttp

__all__ = ["OAuthCredentials"]

log = logging.getLogger(__name__)

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class OAuthCredentials:
    """A CredentialProvider for the OAuth-protected MCP server at `mcp_url`.

    Lifecycle: construct, use, `aclose()` (cancels a running login and the background
    refresh, closes the HTTP session it made). Its one session, given or made on first
    use, serves the token manager and every login."""

    def __init__(
        self,
        mcp_url: str,
        settings: OAuthSettings,
        vault: CredentialVault,
        *,
        interactive: bool,
        background_refresh: bool = True,
        http: aiohttp.ClientSession | None = None,
        notify: Notify = notify_on_stderr,
        pasted_urls: PastedUrls | None = None,
        clock: Callable[[], float] = time.time,
        login_grace_s: float = 0.0,
        paths: BridgePaths | None = None,
    ) -> None:
        self.mcp_url = mcp_url
        self.interactive = interactive
        self._background_refresh = background_refresh
        self._policy = UrlPolicy.for_server(mcp_url, allow_http=settings.allow_http)
        self._http = SessionHolder(http)
        self.manager = TokenManager(
            mcp_url, vault, policy=self._policy, http=self._session, clock=clock
        )
        self._fresh = FreshLoginWatch(mcp_url)
        self.logins = LoginCoordinator(
            mcp_url,
            settings,
            self.manager,
            policy=self._policy,
            http=self._session,
            fresh=self._fresh,
            lock_path=login_lock_path(paths or bridge_paths(), mcp_url),
            interactive=interactive,
            background_refresh=background_refresh,
            notify=notify,
            pasted_urls=pasted_urls,
            clock=clock,
            login_grace_s=login_grace_s,
        )
        self._step_ups = StepUpBudget()
        self._header_for: TokenSet | None = None
        self._header: Mapping[str, str] = _NO_HEADERS
        # The server never answers 401 but names an authorization server in its resource
        # metadata (it answers "Unauthorized" inside tool results instead): a request with
        # no login starts one itself. Set by the engine once it has seen that metadata.
        self.sign_in_unasked = False
        self._challenged = False  # the server answered 401 or 403: it asks the usual way

    async def logout(self, *, revoke: bool = True) -> bool:
        """Forget the tokens, revoking them first where the AS offers it (True when it
        confirmed). A client that authenticates with a key (a grant without a browser)
        revokes with that key, as it got its tokens."""
        await self.manager.load()
        client = None
        context = self.manager.context
        flow = self.logins.flow
        if isinstance(flow, MachineLogin) and context is not None:
            try:
                client = flow.client_at(context.auth_server, self.manager.client)
            except BridgeError as exc:  # no key or secret now: revoke as the vault has it
                log.info("revoking as the stored client: %s", exc)
        return await self.manager.forget(revoke=revoke, client=client)

    def use_settings(self, settings: OAuthSettings) -> None:
        """Sign in with `settings` from now on; the tokens held are kept. (A daemon resumes
        stored logins with default settings and learns a server's flags from the first
        client that names them.) The URL policy stays the one built at start."""
        self.logins.use_settings(settings)
        self._fresh.forget()

    # -- CredentialProvider -------------------------------------------------------------

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        """The token's headers for a `method` request to `url`; for a server that never
        challenges (`sign_in_unasked`), a request with no login to use starts one, as a
        401 would."""
        try:
            return await self._headers(method, url, may_sign_in=self.signs_in_unasked)
        except _NoLogin:
            return _NO_HEADERS

    @property
    def signs_in_unasked(self) -> bool:
        """`headers()` starts a login when there is none to use: the server wants OAuth
        but has never challenged, and a login may run here."""
        return self.sign_in_unasked and self.interactive and not self._challenged

    async def stored_headers(self, method: str, url: str) -> Mapping[str, str]:
        """The token's headers of a login already held (refreshed if needed); never starts
        a login (the engine's own background requests use this)."""
        try:
            return await self._headers(method, url, may_sign_in=False)
        except _NoLogin:
            return _NO_HEADERS

    def on_dpop_nonce(self, url: str, nonce: str) -> None:
        self.manager.dpop.nonces.remember(url, nonce)

    async def _headers(self, method: str, url: str, *, may_sign_in: bool) -> Mapping[str, str]:
        tokens = self.manager.usable_tokens()
        if tokens is None:
            with as_auth_errors():
                try:
                    tokens = await self.manager.fresh_tokens()
                except LoginRequired as exc:
                    # No token to send: the resource's 401 comes back to on_unauthorized,
                    # with the challenge that says what to ask for. (An AS that is down
                    # raises instead: the request is answered "retry shortly".)
                    log.debug("no usable token for %s: %s", self.mcp_url, exc.what)
                    if not may_sign_in:
                        raise _NoLogin from exc
                    await self.logins.wait(None)
                    tokens = self.manager.usable_tokens()
                    if tokens is None:
                        raise _NoLogin from exc
            if self._background_refresh:
                self.manager.start_background()
        if tokens.is_dpop and not tokens.sends_id_token:  # an ID token goes as a Bearer
            self._header_for = tokens
            return self._dpop_headers(tokens, method, url)
        if tokens is not self._header_for:
            self._header = MappingProxyType({"Authorization": tokens.authorization_header()})
            self._header_for = tokens
        return self._header

    def _dpop_headers(self, tokens: TokenSet, method: str, url: str) -> Mapping[str, str]:
        """RFC 9449 §7.1: the DPoP scheme, and a new proof for this one request."""
        proofs = self.manager.dpop.proofs
        if proofs is None:  # the vault lost the key the tokens are bound to
            raise LoginRequired(
                f"The DPoP key of the login to {self.mcp_url} is gone",
                next_step=f"Run `mcp-bridge login {self.mcp_url}`",
            )
        proof = proofs.proof(method, url, tokens.access_token)
        return {"Authorization": tokens.authorization_header(), "DPoP": proof}

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        self._challenged = True
        challenge = BearerChallenge.from_header(www_authenticate)
        with as_auth_errors():
            if self._fresh.verdict is not None:
                # No refresh or login while the verdict stands; a login another process
                # made meanwhile is in the vault, and its tokens are worth one try.
                await self.manager.reload()
            else:
                await self.manager.load()
            tokens = self.manager.tokens
            if tokens is not None and tokens.is_dpop and challenge and challenge.wants_nonce:
                # RFC 9449 §9: the proof lacked the resource's nonce, which on_dpop_nonce
                # has kept from this very answer: the next proof names it.
                return True
            if tokens is not None and not _unbound_refused(tokens, challenge):
                if tokens is not self._header_for and self.manager.usable_tokens() is tokens:
                    # These tokens were never sent: the 401 is for a request that carried
                    # older ones (or none). Retry with them rather than spend a refresh.
                    # Expired ones would only meet another 401, with no retry left: the
                    # refresh below (or a login) must happen now.
                    return True
                if self._fresh.verdict is not None:
                    raise self._fresh.verdict
                try:
                    await self.manager.refresh(rejected=tokens)
                    return True
                except LoginRequired as exc:
                    log.info("%s; a new login is needed", exc.what)
            await self.logins.wait(challenge)
            return True

    async def on_retry_refused(self, www_authenticate: str | None) -> None:
        """The retry on_unauthorized asked for met a 401 too: when it carried the token a
        login got moments ago, the verdict of refused_login.py explains it."""
        refused = self._fresh.judge(self._header_for, BearerChallenge.from_header(www_authenticate))
        if refused is not None:
            raise refused

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        challenge = BearerChallenge.from_header(www_authenticate)
        if challenge is None or not challenge.is_insufficient_scope:
            return False  # a plain 403 is the server's final word
        with as_auth_errors():
            await self.manager.load()
            tokens = self.manager.tokens
            previous = tokens.scopes if tokens is not None else ()
            resource = tokens.resource if tokens is not None else self.manager.server_key
            wanted = self._step_ups.spend(self.mcp_url, resource, previous, challenge.scope)
            log.info("step-up for %s: asking for %s", self.mcp_url, " ".join(wanted))
            await self.logins.wait(challenge, previous_scopes=previous)
            return True

    # -- logins -------------------------------------------------------------------------

    @property
    def pending_url(self) -> str | None:
        """The authorization URL of the browser login waiting for the user, if any."""
        return self.logins.pending_url

    async def sign_in_url_shown(self, other_than: str | None = None) -> tuple[str, str]:
        """The URL the login waiting for the user wants opened, and what to tell the user
        ("Open URL to sign in", or with a device login's code "Open URL and enter the code
        C"): at once when one waits, else when a login gets that far (a grant never does).
        `other_than`: a URL the asker holds already, which does not count."""
        flow = self.logins.flow
        while (url := flow.pending_url) is None or url == other_than:
            await (flow.url_shown if url is None else flow.url_withdrawn).wait()
        return url, what_to_do(self.logins.settings, url, flow.pending_code)

    def client_waits(self) -> None:
        """A request will hand the sign-in URL to its client (login_coordinator.py)."""
        self.logins.client_waits()

    def client_done(self, handed: str | None) -> None:
        """That request is over, having handed `handed` to its client (None: nothing)."""
        self.logins.client_done(handed)

    async def login(self, challenge: BearerChallenge | None = None) -> LoginResult:
        """A browser login now (the `login` command), joined with one already running.
        Without a challenge, the server is asked for one first (its scopes, its PRM URL).
        The tokens are kept whatever happens next, but when the server refuses them at
        once, the verdict of refused_login.py is raised."""
        with as_auth_errors():
            await self.manager.load()
            if challenge is None:
                challenge = await fetch_challenge(self.mcp_url, self._session(), self._policy)
            login = self.logins.start(challenge)
            self.logins.person_asks()  # the tab opens even if a client has the URL
            result = await asyncio.shield(login)
            # Asked for by a person (or the status page), so worth one more request: a
            # token the server refuses at once is better said now than at the first use.
            headers = await self.stored_headers("POST", self.mcp_url)
            answer = await probe_server(self.mcp_url, self._session(), self._policy, headers)
            if answer.unauthorized and (
                verdict := self._fresh.judge(self._header_for, answer.challenge)
            ):
                raise verdict
            return result

    def _session(self) -> aiohttp.ClientSession:
        """The session for every request to the AS, made on first use (inside the loop)."""
        return self._http.get()

    async def aclose(self) -> None:
        await self.logins.aclose()
        await self.manager.aclose()
        await self._http.aclose()


def _unbound_refused(tokens: TokenSet, challenge: BearerChallenge | None) -> bool:
    """Bearer tokens refused by a resource that offers only DPoP: a refresh would bring
    Bearer tokens again, only a login binds new ones to a key."""
    return not tokens.is_dpop and challenge is not None and not challenge.offers_bearer


class _NoLogin(Exception):
    """Internal: no login to take a header from."""
