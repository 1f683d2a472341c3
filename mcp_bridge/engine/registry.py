"""CredentialRegistry: what every session of one process shares per remote server, keyed
by canonical resource (RFC 8707): one OAuth provider (its token manager, login
single-flight, storm brake and step-up counts) and one aiohttp session.

In the daemon this is what makes "one login and one refresh per server" true by
construction: every shim's session for a server asks the same provider. `run --no-daemon`
uses a registry of its own, and the vault's file lock coordinates it with other processes.

Knows profiles, auth providers and the vault; not sockets, stdio or JSON-RPC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mcp_bridge.auth.on_demand import OnDemandCredentials
from mcp_bridge.auth.settings import OAuthSettings
from mcp_bridge.auth.urlpolicy import canonical_resource
from mcp_bridge.engine.answer_book import AnswerBook
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.errors import BridgeError
from mcp_bridge.http_client import SessionHolder
from mcp_bridge.paths import BridgePaths
from mcp_bridge.server_log import serving

if TYPE_CHECKING:
    import aiohttp

    from mcp_bridge.auth.provider import OAuthCredentials
    from mcp_bridge.auth.token_manager import LoginResult
    from mcp_bridge.store.base import CredentialVault

__all__ = ["CredentialRegistry", "ServerState"]

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ServerState:
    """The shared state of one remote server."""

    resource: str
    url: str
    settings: OAuthSettings
    http: SessionHolder = field(default_factory=SessionHolder)
    oauth: OAuthCredentials | None = None  # built on the first challenge or stored login
    credentials: OnDemandCredentials | None = None
    answers: AnswerBook | None = None
    # The one background job at a time a server may have (a recheck of its answers).
    job: asyncio.Task[None] | None = None
    # What the vault said last time it was asked whether it holds a login for this
    # server, and the vault file's modification time then (asked again when it changes).
    stored_login_seen: tuple[float, bool] | None = None
    # Whether the server's resource metadata names an authorization server (asked once,
    # by the first request that finds no login), and the request for it.
    names_auth_server: bool | None = None
    metadata_probe: asyncio.Task[bool] | None = None
    # Told when a refresh finds the server's grant dead (the sessions tell their clients).
    login_watchers: set[Callable[[str], None]] = field(default_factory=set)


class CredentialRegistry:
    """Per-server shared state for the sessions of one process. `aclose()` (or
    `contextlib.aclosing`) cancels logins and refresh timers and closes every HTTP session.

    `interactive`: a request that needs a login may start one in the browser (False: it
    fails naming `mcp-bridge login`). `login_grace_s`: how long a login waits before it
    opens a browser; the in-process mode sets it, because a host's throw-away probe copy
    that is killed within a second would take its login (and callback listener) with it.
    """

    def __init__(
        self,
        paths: BridgePaths,
        *,
        open_vault: Callable[[], CredentialVault] | None = None,
        interactive: bool = True,
        login_grace_s: float = 0.0,
    ) -> None:
        self._paths = paths
        self._vault_path = str(paths.vault_file)
        self._open_vault = open_vault
        self._vault: CredentialVault | None = None
        self._interactive = interactive
        self._login_grace_s = login_grace_s
        self._servers: dict[str, ServerState] = {}

    @property
    def servers(self) -> list[ServerState]:
        return list(self._servers.values())

    @property
    def paths(self) -> BridgePaths:
        return self._paths

    @property
    def vault(self) -> CredentialVault:
        """The one vault of this process (opened on first use)."""
        return self._opened_vault()

    def state_for(self, profile: ServerProfile) -> ServerState:
        """The shared state of `profile`'s server, made on first use. The first profile
        that names OAuth settings for a server sets them; a later, different one is
        logged (one login configuration per server)."""
        resource = profile.resource
        state = self._servers.get(resource)
        if state is None:
            state = ServerState(resource, profile.url, profile.oauth or OAuthSettings())
            self._servers[resource] = state
        elif profile.oauth is not None and profile.oauth != state.settings:
            if state.oauth is None and state.credentials is None:
                state.settings = profile.oauth
            elif state.settings == OAuthSettings():
                # Resumed from the vault with defaults: the first client naming the
                # server's flags is the better source for its next login.
                state.settings = profile.oauth
                if state.oauth is not None:
                    state.oauth.use_settings(profile.oauth)
            else:
                log.info("%s: keeping the OAuth settings it was first used with", resource)
        return state

    def answers_for(self, profile: ServerProfile) -> AnswerBook:
        """The server's cached answers, read from disk on first use."""
        state = self.state_for(profile)
        if state.answers is None:
            state.answers = AnswerBook(self._paths.answer_cache_dir, state.resource)
        return state.answers

    def start_job(self, profile: ServerProfile, job: Coroutine[Any, Any, None]) -> None:
        """Run `job` in the background for the server, unless one already runs; the
        registry owns it (cancelled by `aclose`), and logs what it raised."""
        state = self.state_for(profile)
        if state.job is not None and not state.job.done():
            job.close()
            return
        state.job = asyncio.create_task(job, name=f"job for {state.resource}")
        state.job.add_done_callback(_log_failure)

    def http_for(self, profile: ServerProfile) -> aiohttp.ClientSession:
        """The server's one HTTP session (made inside the running loop, on first use)."""
        return self.state_for(profile).http.get()

    def credentials_for(self, profile: ServerProfile) -> OnDemandCredentials | None:
        """The server's credential provider; None when the profile carries its own
        `Authorization` header (no OAuth)."""
        if profile.oauth is None:
            return None
        state = self.state_for(profile)
        if state.credentials is None:
            state.credentials = OnDemandCredentials(
                lambda: self._oauth(state), lambda: self._wants_provider(state)
            )
        return state.credentials

    async def resume_stored_logins(self) -> int:
        """Start background refresh for every login in the vault (the daemon does this at
        start, so tokens stay fresh whether or not a client is connected). Returns how
        many logins were found."""
        if not self._paths.vault_file.exists():
            return 0  # the vault's code (cryptography, a keyring) stays unloaded till needed
        from mcp_bridge.auth.auth_records import SERVERS

        async with self._opened_vault().transaction() as txn:
            resources = txn.keys(SERVERS)
        for resource in resources:
            profile = ServerProfile(url=resource)
            state = self.state_for(profile)
            credentials = self.credentials_for(profile)
            assert credentials is not None
            oauth = self._oauth(state)
            with serving(resource):  # the refresh timer logs to the server's own file
                with contextlib.suppress(BridgeError):
                    await oauth.manager.load()
                oauth.manager.start_background()
        return len(resources)

    async def login(self, profile: ServerProfile) -> LoginResult:
        """A browser login to `profile`'s server now, joined with one already running: the
        status page's Login button (the same login a request's 401 starts)."""
        state = self.state_for(profile)
        return await self._oauth(state).login()

    def running_login(self, url: str) -> OAuthCredentials | None:
        """The provider of the server at `url` while a login of its runs (a terminal's
        `mcp-bridge login` joins it: daemon/login_join.py), else None. UrlRefused for a
        URL that names no MCP server."""
        state = self._servers.get(canonical_resource(url))
        oauth = None if state is None else state.oauth
        return oauth if oauth is not None and oauth.logins.is_running else None

    def sign_in_url(self, resource: str) -> str | None:
        """The authorization URL of the login running for `resource`, if any."""
        state = self._servers.get(resource)
        return None if state is None or state.oauth is None else state.oauth.pending_url

    def oauth_for(self, profile: ServerProfile) -> OAuthCredentials:
        """`profile`'s OAuth provider, built on first use: its logins, their URLs, and who
        shows them (engine/prompt_sign_in.py)."""
        return self._oauth(self.state_for(profile))

    async def logout(self, profile: ServerProfile) -> bool:
        """Forget the server's tokens, revoking them where the authorization server offers
        it (what `mcp-bridge logout` does). True when the server confirmed revocation."""
        return await self._oauth(self.state_for(profile)).logout()

    async def aclose(self) -> None:
        states, self._servers = list(self._servers.values()), {}
        jobs: list[asyncio.Task[Any]] = [s.job for s in states if s.job is not None]
        jobs += [s.metadata_probe for s in states if s.metadata_probe is not None]
        for job in jobs:
            job.cancel()
        await asyncio.gather(*jobs, return_exceptions=True)
        for state in states:
            if state.credentials is not None:
                await state.credentials.aclose()
            elif state.oauth is not None:
                await state.oauth.aclose()
            await state.http.aclose()

    # -- building ---------------------------------------------------------------------

    def _opened_vault(self) -> CredentialVault:
        if self._vault is None:
            if self._open_vault is not None:
                self._vault = self._open_vault()
            else:
                from mcp_bridge.store.selection import open_vault

                self._vault = open_vault(paths=self._paths)
        return self._vault

    def _oauth(self, state: ServerState) -> OAuthCredentials:
        if state.oauth is None:
            from mcp_bridge.auth.provider import OAuthCredentials

            state.oauth = OAuthCredentials(
                state.url,
                state.settings,
                self._opened_vault(),
                interactive=self._interactive,
                http=state.http.get(),
                login_grace_s=self._login_grace_s,
                paths=self._paths,
            )
            state.oauth.sign_in_unasked = state.names_auth_server is True
            state.oauth.manager.on_login_lost = lambda what: _tell(state.login_watchers, what)
        return state.oauth

    async def _wants_provider(self, state: ServerState) -> bool:
        """Build the provider before any challenge: a login is stored, or the server wants
        OAuth without ever answering 401 (its metadata names an authorization server)."""
        if await self._has_stored_login(state):
            return True
        if state.names_auth_server is None:
            # Asked in the background: this request goes out without a token, and a server
            # that wants OAuth the usual way answers it with a 401, whose challenge (its
            # scopes) the login then follows.
            self._probe_metadata(state)
            return False
        return state.names_auth_server

    def _probe_metadata(self, state: ServerState) -> None:
        if state.metadata_probe is not None:
            return
        from mcp_bridge.auth.discovery import names_an_auth_server
        from mcp_bridge.auth.urlpolicy import UrlPolicy

        policy = UrlPolicy.for_server(state.url, allow_http=state.settings.allow_http)
        probe = asyncio.create_task(names_an_auth_server(state.url, state.http.get(), policy))
        state.metadata_probe = probe

        def learned(task: asyncio.Task[bool]) -> None:
            found = not task.cancelled() and task.exception() is None and task.result()
            state.names_auth_server = found
            if found:
                log.info(
                    "%s names an authorization server; if it never asks for a token, a "
                    "request with no login will start one",
                    state.resource,
                )
                if state.oauth is not None:
                    state.oauth.sign_in_unasked = True

        probe.add_done_callback(learned)

    async def _has_stored_login(self, state: ServerState) -> bool:
        try:
            # os.stat on a str: this runs for every request to a server without a provider.
            mtime = os.stat(self._vault_path).st_mtime
        except OSError:
            return False  # no vault, no login: the common case costs one stat
        seen = state.stored_login_seen
        if seen is not None and seen[0] == mtime:
            return seen[1]
        from mcp_bridge.auth.auth_records import SERVERS

        try:
            found = await self._opened_vault().get(SERVERS, state.resource) is not None
        except BridgeError as exc:
            # A locked keyring: the request goes out without a token, and the server's
            # 401 (if it sends one) reaches the provider, which reports this properly.
            log.warning("cannot look for a stored login for %s: %s", state.resource, exc)
            found = False
        state.stored_login_seen = (mtime, found)
        return found


def _tell(watchers: set[Callable[[str], None]], what: str) -> None:
    for watcher in list(watchers):
        watcher(what)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and (exc := task.exception()) is not None:
        log.warning("%s failed: %s", task.get_name(), exc, exc_info=exc)
