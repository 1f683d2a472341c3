"""Who shows a real login's URL, through the provider (OAuthCredentials) a daemon shares:
when a request that was to hand the URL to its client does not, or a person asks for the
login (the status page's Login button), our tab opens it after all. The tab is the redirect
follower, so a login that completes is one whose tab opened; the demo authorization server
and its MCP server are the peers. A request that waits for a login
whose URL only clients show is answered with that URL at once."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

import pytest

from mcp_bridge.auth.errors import LoginRequired
from mcp_bridge.auth.provider import OAuthCredentials
from mcp_bridge.auth.token_manager import LoginResult
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.client_sign_in import open_in_headless_browser
from tests.fixtures.oauth_client import WAIT_S, OAuthPeers, settings_for, use_follower


class WaitedLogin(NamedTuple):
    server: AuthServer
    credentials: OAuthCredentials
    login: asyncio.Task[LoginResult]  # the login the request started
    url: str


async def login_a_client_waited_for(
    auth_server: AuthServerFactory,
    oauth: OAuthPeers,
    monkeypatch: pytest.MonkeyPatch,
    *,
    login_wait_s: float = WAIT_S,
) -> WaitedLogin:
    """A request of a client that takes URLs starts a login, whose URL it is shown; the
    redirect follower is $BROWSER."""
    server = auth_server()
    use_follower(monkeypatch)
    credentials = oauth.credentials(
        server.mcp_url,
        MemoryVault(),
        interactive=True,
        notify=lambda _: None,
        settings=settings_for(login_wait_s=login_wait_s),
    )
    credentials.client_waits()
    login = credentials.logins.start(None)
    async with asyncio.timeout(WAIT_S):
        url, _ = await credentials.sign_in_url_shown()
    return WaitedLogin(server, credentials, login, url)


async def test_a_request_that_hands_nothing_over_leaves_the_url_to_our_tab(
    auth_server: AuthServerFactory, oauth: OAuthPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    login = await login_a_client_waited_for(auth_server, oauth, monkeypatch)
    login.credentials.client_done(None)  # e.g. the client cancelled the request in between
    async with asyncio.timeout(WAIT_S):
        await login.login  # signed in through the tab opened now
    assert login.server.stats()["authorizations"] == 1


async def test_a_person_asking_gets_the_tab_for_a_url_a_client_was_handed(
    auth_server: AuthServerFactory, oauth: OAuthPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    login = await login_a_client_waited_for(auth_server, oauth, monkeypatch)
    login.credentials.client_done(login.url)
    async with asyncio.timeout(WAIT_S):
        await login.credentials.login()  # joins the login; its tab signs in
    assert login.login.done()
    assert login.server.stats()["authorizations"] == 1


async def test_a_url_a_client_was_handed_waits_for_that_client(
    auth_server: AuthServerFactory, oauth: OAuthPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the two above: with the URL handed over, only the user following
    it (here, the test) signs in; a tab would have raced it to the same authorization."""
    login = await login_a_client_waited_for(auth_server, oauth, monkeypatch)
    login.credentials.client_done(login.url)
    await open_in_headless_browser(login.url)
    async with asyncio.timeout(WAIT_S):
        await login.login
    assert login.server.stats()["authorizations"] == 1


async def test_a_request_of_a_client_not_handed_the_url_gets_it_at_once_when_only_clients_show_it(
    auth_server: AuthServerFactory, oauth: OAuthPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its login wait (an hour) is far longer than the test waits for the answer: an
    answer at all means it came early. No tab opened for it: it still is one login, which
    the user finishes at the URL the clients show."""
    login = await login_a_client_waited_for(auth_server, oauth, monkeypatch, login_wait_s=3600)
    login.credentials.client_done(login.url)
    async with asyncio.timeout(WAIT_S):
        with pytest.raises(LoginRequired) as raised:
            await login.credentials.on_unauthorized(None)
    assert raised.value.sign_in_url == login.url
    assert login.url in raised.value.next_step
    await open_in_headless_browser(login.url)
    async with asyncio.timeout(WAIT_S):
        await login.login
    assert login.server.stats()["authorizations"] == 1
