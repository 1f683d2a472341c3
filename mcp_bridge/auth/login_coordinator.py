"""LoginCoordinator: when and how one MCP server's logins run, for the credential provider
(provider.py), which decides that one is needed.

- which login: the browser's (BrowserLogin), the device's for `--device` (DeviceLogin), or
  for a grant that needs no user (docs/grants.md) the grant itself (MachineLogin), which
  then also renews the tokens in place of a refresh token;
- one at a time: callers join the running login (single-flight), and across processes the
  one holding the server's login lock signs in while the others follow it (shared_login.py);
- storm-braked (login_brake.py), and a probe copy's login waits `login_grace_s` first;
- a request waits for a browser at most `settings.login_wait_s` (not at all once the URL
  is ready and only clients show it, not our tab, unless its own session hands sign-in
  URLs to its client: `CLIENT_SHOWS_URL`), then fails with "finish signing in,
  then retry" (and the sign-in URL) while the login carries on: the strictest
  hosts give a call 60 s (docs/desktop-hosts.md, "Deadlines"), and the SDK's client blocks
  the request for the whole login (docs/sdk-gaps.md #10);
- who shows the sign-in URL, a client or our browser tab (url_showing.py): the requests
  that hand it to their client say so (`client_waits`, `client_done`), and a person asking
  for the login (`person_asks`) always gets the tab.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path

from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.device_login import DeviceLogin
from mcp_bridge.auth.errors import LoginRequired
from mcp_bridge.auth.http_step import SessionSource
from mcp_bridge.auth.login import BrowserLogin
from mcp_bridge.auth.login_brake import LoginBrake
from mcp_bridge.auth.machine_login import MachineLogin
from mcp_bridge.auth.refused_login import FreshLoginWatch
from mcp_bridge.auth.scopes import step_up_scopes
from mcp_bridge.auth.settings import OAuthSettings
from mcp_bridge.auth.shared_login import as_auth_errors, follow_other_login
from mcp_bridge.auth.sign_in import Notify, PastedUrls, notify_on_stderr
from mcp_bridge.auth.single_flight import SingleFlight
from mcp_bridge.auth.token_manager import LoginResult, TokenManager
from mcp_bridge.auth.url_showing import CLIENT_SHOWS_URL, UrlShowing
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.process_lock import ProcessFileLock

__all__ = ["SIGN_IN_URL_WAIT_S", "LoginCoordinator", "LoginFlow"]

SIGN_IN_URL_WAIT_S = 10.0  # a request past its login wait waits this much more for the URL

LoginFlow = BrowserLogin | DeviceLogin | MachineLogin


class LoginCoordinator:
    """The logins of the MCP server at `mcp_url`; see the module docstring. `fresh` is
    told of each login's tokens (the provider judges a refusal of them by it)."""

    def __init__(
        self,
        mcp_url: str,
        settings: OAuthSettings,
        manager: TokenManager,
        *,
        policy: UrlPolicy,
        http: SessionSource,
        fresh: FreshLoginWatch,
        lock_path: Path,
        interactive: bool,
        background_refresh: bool,
        notify: Notify = notify_on_stderr,
        pasted_urls: PastedUrls | None = None,
        clock: Callable[[], float] = time.time,
        login_grace_s: float = 0.0,
    ) -> None:
        self.mcp_url = mcp_url
        self.manager = manager
        self.interactive = interactive
        self._policy, self._session, self._fresh = policy, http, fresh
        self._lock_path = lock_path
        self._background_refresh = background_refresh
        self._notify, self._pasted_urls, self._clock = notify, pasted_urls, clock
        self._login_grace_s = login_grace_s
        self.settings = settings
        self.showing = UrlShowing()
        self.flow = self._flow_for(settings)
        self.brake = LoginBrake()
        self._logins: SingleFlight[LoginResult] = SingleFlight()
        self.count = 0  # logins completed

    def use_settings(self, settings: OAuthSettings) -> None:
        """Sign in with `settings` from the next login on."""
        self.settings = settings
        self.flow = self._flow_for(settings)

    def _flow_for(self, settings: OAuthSettings) -> LoginFlow:
        if settings.grant.is_machine:
            machine = MachineLogin(
                self.mcp_url,
                settings,
                self.manager,
                policy=self._policy,
                http=self._session,
                clock=self._clock,
                dpop=self.manager.dpop,
            )
            self.manager.renewal = machine.renew
            return machine
        self.manager.renewal = None
        kind = DeviceLogin if settings.device else BrowserLogin
        return kind(
            self.mcp_url,
            settings,
            self.manager,
            policy=self._policy,
            http=self._session,
            notify=self._notify,
            pasted_urls=self._pasted_urls,
            clock=self._clock,
            dpop=self.manager.dpop,
            showing=self.showing,
        )

    @property
    def pending_url(self) -> str | None:
        """The authorization URL of the browser login waiting for the user, if any."""
        return self.flow.pending_url

    @property
    def pending_code(self) -> str | None:
        """The code a device login waiting for the user shows, if any."""
        return self.flow.pending_code

    @property
    def takes_pasted(self) -> bool:
        """The running login waits for the address its browser ends on: a terminal that
        joined it may paste that (a browser on another machine cannot reach our listener)."""
        return self.flow.takes_pasted

    def take_pasted(self, url: str) -> None:
        """The pasted address, judged as the running login's callback (BrowserLogin).
        AuthError (CallbackRejected among them) when it is refused: the login waits on."""
        self.flow.take_pasted(url)

    @property
    def is_running(self) -> bool:
        """A login runs now: `start` would join it."""
        return self._logins.is_running

    def client_waits(self) -> None:
        """A request will hand the sign-in URL to its client as soon as one waits: no tab
        of ours for it meanwhile. Pair with `client_done`."""
        self.showing.client_waits()

    def client_done(self, handed: str | None) -> None:
        """The request of `client_waits` handed `handed` to its client (None: nothing).
        When that leaves a waiting URL with nobody to show it, our tab opens it now."""
        if self.showing.client_done(handed):
            self.flow.open_tab_late()

    def person_asks(self) -> None:
        """A person asked for the running login (the status page's Login button,
        `mcp-bridge login` joining the daemon's): it
        shows in our tab, even where a client was handed its URL."""
        if self.showing.person_asks():
            self.flow.open_tab_late()

    async def wait(
        self, challenge: BearerChallenge | None, *, previous_scopes: tuple[str, ...] = ()
    ) -> None:
        """A login for a request: joined or started, and waited for at most
        `settings.login_wait_s`; LoginRequired saying what to do when it cannot run here
        (not interactive) or takes longer. `previous_scopes`: a step-up's granted scopes."""
        settings = self.settings
        command = settings.login_command(self.mcp_url)
        if not self.interactive and not settings.grant.is_machine:
            if previous_scopes and challenge is not None:
                # A step-up: the login must ask for the union (MCP "Step-Up Authorization
                # Flow"), not the defaults.
                wanted = " ".join(step_up_scopes(previous_scopes, challenge.scope))
                command += f" --scope '{wanted}'"
            raise LoginRequired(
                f"{self.mcp_url} needs a {settings.login_kind}",
                next_step=f"Run `{command}` in a terminal, then retry",
            )
        task = self.start(challenge, previous_scopes)
        try:
            async with asyncio.timeout(settings.login_wait_s):
                left_to_clients = await self._until_done_or_left_to_clients(task)
        except TimeoutError:
            left_to_clients = False
        if task.done():
            await task  # the tokens, or the login's own error
            return
        url = self.flow.pending_url if left_to_clients else await self._sign_in_url(task)
        what = what_to_do(settings, url, self.flow.pending_code)
        raise LoginRequired(
            _still_waiting(self.mcp_url, settings),
            next_step=f"{what} (or run `{command}` in a terminal), then retry",
            sign_in_url=url,
        )

    async def _until_done_or_left_to_clients(self, login: asyncio.Task[LoginResult]) -> bool:
        """Wait for `login` (never cancelled here), or until its URL is ready and only
        clients show it (True): no tab of ours shows it, so the request waiting would show
        its user nothing while it spends the host's deadline for the call. A URL in our tab
        is waited on: the user is signing in there, and the request then simply goes on;
        so is any URL for a request whose session shows it (CLIENT_SHOWS_URL)."""
        if self.settings.grant.is_machine or CLIENT_SHOWS_URL.get():
            await asyncio.wait((login,))
            return False
        url_ready = asyncio.ensure_future(self.flow.url_shown.wait())
        try:
            await asyncio.wait((login, url_ready), return_when=asyncio.FIRST_COMPLETED)
        finally:
            url_ready.cancel()
        if not login.done() and self.showing.left_to_clients:
            return True
        await asyncio.wait((login,))
        return False

    async def _sign_in_url(self, login: asyncio.Task[LoginResult]) -> str | None:
        """The URL of the running login, waiting a little for it when the login has not
        come that far (discovery, registration, the in-process grace): it is what the
        client needs to be told. A grant without a user never shows one."""
        if self.settings.grant.is_machine:
            return None
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SIGN_IN_URL_WAIT_S):
                while not login.done() and self.flow.pending_url is None:
                    await self.flow.url_shown.wait()
        return self.flow.pending_url

    def start(
        self, challenge: BearerChallenge | None, previous_scopes: tuple[str, ...] = ()
    ) -> asyncio.Task[LoginResult]:
        """The running login, or a new one (braked); shield it to wait for it."""
        if not self._logins.is_running:
            self.brake.start(self.mcp_url, self.settings)  # joining one starts nothing new
        return self._logins.join(lambda: self._run(challenge, previous_scopes))

    async def _run(
        self, challenge: BearerChallenge | None, previous_scopes: tuple[str, ...]
    ) -> LoginResult:
        # One browser login per server across processes (shared_login.py).
        lock = ProcessFileLock(self._lock_path)
        before = self.manager.tokens
        if not lock.try_acquire():
            timeout_s = self.settings.timeout_s
            followed = await follow_other_login(self.manager, lock, before, timeout_s=timeout_s)
            if followed is not None:
                self._fresh.logged_in(followed.tokens)
                return followed
        try:
            if self._login_grace_s and not self.settings.grant.is_machine:
                # A probe copy the host kills within a second never opens a browser tab.
                await asyncio.sleep(self._login_grace_s)
            return await self._sign_in(challenge, previous_scopes)
        finally:
            self.showing.url_gone()  # a person's ask ends with the login, URL or not
            lock.release()

    async def _sign_in(
        self, challenge: BearerChallenge | None, previous_scopes: tuple[str, ...]
    ) -> LoginResult:
        with as_auth_errors():
            context = self.manager.context
            result = await self.flow.run(
                challenge,
                previous_scopes=previous_scopes,
                preferred_issuer=context.issuer if context is not None else None,
            )
            await self.manager.save_login(result)
        self._fresh.logged_in(result.tokens)
        if self._background_refresh:
            self.manager.start_background()
        self.brake.completed()
        self.count += 1
        return result

    async def aclose(self) -> None:
        """Cancel a running login."""
        await self._logins.cancel()


def _still_waiting(server: str, settings: OAuthSettings) -> str:
    """What a request that stopped waiting for a login is told: in the words of the kind
    of login (a device login shows a code, a grant needs nobody)."""
    if settings.grant.is_machine:
        return f"The {settings.login_kind} for {server} has not finished yet"
    return f"A {settings.login_kind} to {server} is waiting for you"


def what_to_do(settings: OAuthSettings, url: str | None, code: str | None) -> str:
    """What a user is told to do for the login waiting for them (`url`, `code`: what the
    login shows, when it has come that far)."""
    if url is not None and code is not None:
        return f"Open {url} and enter the code {code}"
    if url is not None:
        return f"Open {url} to sign in"
    if settings.grant.is_machine:
        return "Wait a moment for the authorization server"
    if settings.device:
        return "Enter the code mcp-bridge showed at the device sign-in page"
    return "Finish signing in in the browser"
