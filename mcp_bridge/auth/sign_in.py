"""What every sign-in does before its grant, whichever grant it is (the browser's
authorization code in login.py, the device code in device_login.py): find the authorization
server, choose the scopes, start from what the issuer was found to need, and get a client
id. Each step is the spec's rule (MCP 2026-07-28, the "Authorization" pages):

1. discover the AS ("Authorization Server Discovery"; from the challenge when there is one);
2. the scopes: `--scope` if set, else challenge > PRM scopes_supported > none, unioned with
   the previous grant on step-up ("Scope Selection Strategy", "Step-Up Authorization
   Flow"), plus offline_access where the AS lists it, and `openid` for `--use-id-token`;
3. the issuer's quirks (AuthServerQuirks: a JSON-only token endpoint, a refused RFC 8707
   `resource`) as the vault remembers them, and `--no-resource`: every grant starts there,
   and the grant's own retries (token_endpoint.post_grant) learn what is still missing;
4. a client id: pre-registered > CIMD > stored DCR for this issuer > new DCR ("Client
   Registration"), a new registration saved at once.

Before any of that, what a server says unasked: its challenge to an unauthenticated request
(`fetch_challenge`, for `mcp-bridge login`); and after a login, whether it takes the token
(`probe_server` with the token: refused_login.py judges a 401).

After them, for a grant with a user, the URL that waits for them: published for requests
that hand it to their client (`pending_url`, `url_shown`), and opened in our own browser tab
when UrlShowing (url_showing.py) says nobody else shows it.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol

from mcp_bridge.auth.auth_records import StoredClient
from mcp_bridge.auth.browser import open_in_browser
from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.discovery import AuthorizationContext, AuthServerQuirks, discover
from mcp_bridge.auth.dpop import login_binds_tokens
from mcp_bridge.auth.dpop_proofs import DpopProofs, ServerDpop
from mcp_bridge.auth.dynamic_registration import ClientMetadata
from mcp_bridge.auth.errors import AuthError
from mcp_bridge.auth.http_step import SessionSource, run_step
from mcp_bridge.auth.registration import obtain_client
from mcp_bridge.auth.scopes import OPENID, login_scopes, scope_param
from mcp_bridge.auth.settings import OAuthSettings
from mcp_bridge.auth.token_manager import LoginResult
from mcp_bridge.auth.url_showing import UrlShowing
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.http_client import proxy_for

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "PROBE_BODY",
    "PROBE_HEADERS",
    "ClientStore",
    "Notify",
    "PastedUrls",
    "ProbeAnswer",
    "SignInPlan",
    "SignInSteps",
    "chosen_scopes",
    "fetch_challenge",
    "notify_on_stderr",
    "probe_server",
    "starting_quirks",
]

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """How the server answered a `ping` probe: whether with 401, and its Bearer challenge."""

    unauthorized: bool
    challenge: BearerChallenge | None = None


async def probe_server(
    mcp_url: str,
    http: aiohttp.ClientSession,
    policy: UrlPolicy,
    credentials: Mapping[str, str] | None = None,
) -> ProbeAnswer:
    """POST a `ping` to the server, with `credentials` (the Authorization header, and a
    DPoP proof) if given. Unreachable counts as no 401: the probe only ever informs."""
    import aiohttp

    policy.check_fetch(mcp_url, role="MCP server")
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            proxy = proxy_for(mcp_url)
            async with http.post(
                mcp_url,
                data=PROBE_BODY,
                headers={**PROBE_HEADERS, **(credentials or {})},
                allow_redirects=False,
                proxy=proxy.proxy,
                proxy_auth=proxy.proxy_auth,
            ) as response:
                if response.status != 401:
                    return ProbeAnswer(unauthorized=False)
                challenges = ", ".join(response.headers.getall("WWW-Authenticate", ()))
                return ProbeAnswer(True, BearerChallenge.from_header(challenges))
    except (TimeoutError, aiohttp.ClientError) as exc:
        log.debug("no answer to the probe from %s: %s", mcp_url, exc)
        return ProbeAnswer(unauthorized=False)


async def fetch_challenge(
    mcp_url: str, http: aiohttp.ClientSession, policy: UrlPolicy
) -> BearerChallenge | None:
    """The Bearer challenge the server answers an unauthenticated request with, or None
    (no 401, no challenge, or unreachable: discovery then uses the well-known URLs)."""
    return (await probe_server(mcp_url, http, policy)).challenge


def chosen_scopes(
    settings: OAuthSettings, context: AuthorizationContext, previous: tuple[str, ...] = ()
) -> tuple[str, ...]:
    """The scopes a login asks for: `--scope` when given, plus what a step-up challenge
    asks (dropping the challenged scope makes the server answer 403 again,
    docs/oauth-in-the-wild.md §3); else the spec's rules (scopes.login_scopes). With
    `--use-id-token`, `openid` too: an OpenID Connect AS issues an ID token only for it
    (OpenID Connect Core §3.1.2.1), and the ID token is what that flag sends."""
    scopes = login_scopes(context, previous=previous, configured=settings.scopes)
    if settings.use_id_token and OPENID not in scopes:
        scopes = (*scopes, OPENID)
    return scopes


def starting_quirks(stored: StoredClient | None, settings: OAuthSettings) -> AuthServerQuirks:
    """Step 3: how a grant at the issuer starts: what the vault remembers of it, without
    `resource` when `--no-resource` says so."""
    quirks = stored.quirks if stored is not None else AuthServerQuirks()
    return quirks if settings.send_resource else replace(quirks, send_resource=False)


class ClientStore(Protocol):
    """Where registrations live (TokenManager implements it)."""

    async def stored_client(self, issuer: str) -> StoredClient | None: ...

    async def save_client(self, client: ClientRegistration, scopes: tuple[str, ...]) -> None: ...


@dataclass(frozen=True, slots=True)
class SignInPlan:
    """Steps 1-3 done: where to sign in, for which scopes, the way to start the grant."""

    context: AuthorizationContext
    scopes: tuple[str, ...]
    quirks: AuthServerQuirks
    challenge: BearerChallenge | None = None  # the 401/403 that asked for the sign-in


class SignInSteps:
    """The steps above for one server, shared by every kind of login. Holds no state
    between logins, so one serves every login of its server."""

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
        showing: UrlShowing | None = None,
    ) -> None:
        self.mcp_url = mcp_url
        self.settings = settings
        self._clients = clients
        self._policy = policy
        self._session = http
        self._notify = notify
        self._pasted_urls = pasted_urls  # the browser login reads them; the device's none
        self._clock = clock
        # Where the server's DPoP key is kept; None: tokens stay Bearer.
        self._dpop = dpop
        # The URL the user must open for the login now waiting, if one is (and for a device
        # login the code to enter there): a request that cannot wait for it any longer
        # hands them to the client (login_coordinator.py). In the daemon this is the only
        # way the user hears of a device code: the daemon's own output is a log file.
        self.pending_url: str | None = None
        self.pending_code: str | None = None
        self.url_shown = asyncio.Event()
        self.url_withdrawn = asyncio.Event()  # set while no URL waits, after one did
        # Whether our browser tab shows that URL; the coordinator shares one across the
        # flows of a server, since the requests that speak for clients outlive a flow.
        self.showing = showing or UrlShowing()
        self._tab_url: str | None = None  # what the tab opens for the pending URL, if any
        self._late_tab: asyncio.Task[None] | None = None

    # -- the URL that waits for the user ------------------------------------------------

    def _publish(self, url: str, code: str | None = None, *, tab_url: str | None) -> bool:
        """`url` (and a device login's `code`) now wait for the user: requests may hand
        them to their clients. True when our tab should open `tab_url` now (None: the
        sign-in has no page worth a tab)."""
        self.pending_url, self.pending_code, self._tab_url = url, code, tab_url
        self.url_withdrawn.clear()
        self.url_shown.set()
        return self.showing.url_ready(url) and tab_url is not None

    def _withdraw(self) -> None:
        """The published URL no longer waits for the user."""
        self.pending_url = self.pending_code = self._tab_url = None
        self.url_shown.clear()
        self.url_withdrawn.set()
        self.showing.url_gone()
        if self._late_tab is not None:
            self._late_tab.cancel()
            self._late_tab = None

    def open_tab_late(self) -> None:
        """Open the tab for the URL waiting now, in the background: UrlShowing said so
        after the URL was ready (the client meant to show it did not, a person asked)."""
        if self._tab_url is not None and self._late_tab is None:
            self._late_tab = asyncio.create_task(self._open_late(self._tab_url))

    async def _open_late(self, url: str) -> None:
        try:
            await self.open_tab(url)
        except AuthError as exc:  # checked when published; a refusal here is only logged
            log.info("not opening the sign-in page: %s", exc)

    @property
    def takes_pasted(self) -> bool:
        """The login waits now for the address its browser ends on (`take_pasted`)."""
        return False

    def take_pasted(self, url: str) -> None:
        """The address a browser ended on, pasted for the login waiting now (a terminal
        that joined the daemon's login sends it); only a browser login takes one."""
        raise AuthError(
            f"The sign-in to {self.mcp_url} is not waiting for a browser's address now",
            next_step="Finish it as the terminal said",
        )

    async def open_tab(self, url: str) -> bool:
        """Open `url` in the user's browser unless `--no-browser`: False when none opened.
        Raises UrlRefused for a URL no browser may be sent to."""
        if not self.settings.open_browser:
            return False
        return await open_in_browser(url, allow_http=self.settings.allow_http)

    # -- the steps ------------------------------------------------------------------------

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
        """Sign in: steps 1-3, then the grant (`_grant`, each kind of login's own).
        `previous_scopes`: the grant's scopes, for a step-up; `preferred_issuer`: the one
        to pick among several authorization servers. Raises AuthError subclasses (the
        refusal of a hostile AS among them) and ConfigError."""
        plan = await self.plan(challenge, previous_scopes, preferred_issuer)
        return await self._grant(plan)

    async def _grant(self, plan: SignInPlan) -> LoginResult:
        raise NotImplementedError

    async def plan(
        self,
        challenge: BearerChallenge | None,
        previous_scopes: tuple[str, ...],
        preferred_issuer: str | None,
    ) -> SignInPlan:
        """Steps 1-3 (see the module docstring)."""
        context = await self.discover(challenge, preferred_issuer=preferred_issuer)
        stored = await self._clients.stored_client(context.issuer)
        quirks = starting_quirks(stored, self.settings)
        scopes = self.scopes_for(context, previous_scopes)
        return SignInPlan(context, scopes, quirks, challenge)

    async def dpop_proofs(
        self, context: AuthorizationContext, challenge: BearerChallenge | None
    ) -> DpopProofs | None:
        """The proofs for the grant when the server asks for DPoP-bound tokens
        (dpop.login_binds_tokens): the server's kept key, or a new one saved first."""
        algs = context.auth_server.dpop_signing_alg_values_supported
        if self._dpop is None or not login_binds_tokens(algs, challenge):
            return None
        return await self._dpop.ensure()

    async def reusable_client(
        self, issuer: str, scopes: tuple[str, ...]
    ) -> ClientRegistration | None:
        """The kept registration for `issuer`, if it was made for these scopes (an AS may
        grant only the scopes a client registered with)."""
        stored = await self._clients.stored_client(issuer)
        return stored.registration if stored is not None and stored.covers(scopes) else None

    async def client_for(
        self,
        context: AuthorizationContext,
        redirect_uri: str,
        scopes: tuple[str, ...],
        stored: ClientRegistration | None,
        *,
        kind: type[ClientMetadata] = ClientMetadata,
    ) -> ClientRegistration:
        """Step 4: the client id to sign in with (see the module docstring). `kind`: the
        registration metadata, which names the grant types the login will use."""
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
