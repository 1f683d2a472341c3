"""OAuthCredentials end to end: the bridge's Streamable HTTP transport, our provider, the
fixture AS + protected MCPServer (tests/fixtures/auth_server.py), and the fast redirect
follower as the browser. Counters from the AS's /stats say what was spent.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from mcp_bridge.auth.errors import AuthError, LoginRequired
from mcp_bridge.demo.auth_modes import ADMIN_SCOPE, BASE_SCOPE
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.mcp_servers import initialize_request
from tests.fixtures.oauth_client import OAuthPeers, text_of, use_follower


async def test_first_call_logs_in_once_through_the_browser_then_calls_the_tool(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = auth_server()
    use_follower(monkeypatch)
    vault = MemoryVault()
    credentials = oauth.credentials(server.mcp_url, vault, interactive=True)
    client = oauth.client(credentials)

    reply = await client.start()  # no token yet: 401 -> discovery, DCR, browser, token
    assert "result" in reply, reply
    assert text_of(await client.call("echo", "hello")) == "hello"

    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"], stats["token_exchanges"]) == (1, 1, 1)
    assert credentials.logins.count == 1
    tokens = credentials.manager.tokens
    assert tokens is not None
    assert tokens.resource == server.mcp_url
    assert BASE_SCOPE in tokens.scopes
    assert "offline_access" in tokens.scopes
    # Never a token in the logs.
    assert tokens.access_token not in caplog.text
    assert tokens.refresh_token is not None
    assert tokens.refresh_token not in caplog.text


async def test_without_interaction_a_call_fails_fast_naming_the_login_command(
    auth_server: AuthServerFactory, oauth: OAuthPeers
) -> None:
    server = auth_server()
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=False)
    with pytest.raises(LoginRequired) as refused:
        await credentials.on_unauthorized(None)
    assert f"mcp-bridge login {server.mcp_url}" in str(refused.value)
    # Nothing stored: no header, and no login.
    assert await credentials.headers("POST", server.mcp_url) == {}
    assert server.stats()["authorize_requests"] == 0


async def test_step_up_logs_in_once_with_the_union_and_the_call_succeeds(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server()
    use_follower(monkeypatch)
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=True)
    client = await oauth.started_client(credentials)
    assert text_of(await client.call("echo")) == "hi"

    assert text_of(await client.call("admin_echo", "root")) == "admin: root"

    stats = server.stats()
    assert stats["step_up_challenges"] == 1
    assert stats["authorizations"] == 2  # the first login and exactly one step-up
    tokens = credentials.manager.tokens
    assert tokens is not None
    assert {BASE_SCOPE, ADMIN_SCOPE} <= set(tokens.scopes)  # the union, not just mcp:admin
    assert text_of(await client.call("echo", "still")) == "still"


async def test_step_up_is_bounded_when_the_server_keeps_refusing(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server()
    use_follower(monkeypatch)
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=True)
    await credentials.login()
    # A server that answers 403 insufficient_scope whatever the AS granted: two step-up
    # logins, then a clear error instead of a browser loop.
    challenge = f'Bearer error="insufficient_scope", scope="{ADMIN_SCOPE}"'
    assert await credentials.on_forbidden(challenge)
    assert await credentials.on_forbidden(challenge)
    with pytest.raises(AuthError, match="still refuses") as refused:
        await credentials.on_forbidden(challenge)
    assert "Ask the server's owner" in str(refused.value)
    stats = server.stats()
    assert stats["authorizations"] == 3  # the login and two step-ups, no more
    # One client for the first scopes, one for the union (the SDK's AS grants only scopes
    # named at registration); the second step-up reused it on its callback port.
    assert stats["registrations"] == 2
    assert not await credentials.on_forbidden('Bearer error="invalid_token"')  # plain 403


async def test_a_step_up_without_interaction_names_the_scopes_to_log_in_with(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server()
    use_follower(monkeypatch)
    vault = MemoryVault()
    interactive = oauth.credentials(server.mcp_url, vault, interactive=True)
    scripted = oauth.credentials(server.mcp_url, vault, interactive=False)
    await interactive.login()
    challenge = f'Bearer error="insufficient_scope", scope="{ADMIN_SCOPE}"'
    with pytest.raises(LoginRequired) as refused:
        await scripted.on_forbidden(challenge)
    assert f"--scope '{BASE_SCOPE} offline_access {ADMIN_SCOPE}'" in str(refused.value)
    assert server.stats()["authorizations"] == 1


async def test_a_refused_login_raises_auth_error_and_never_kills_the_provider(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server(iss="wrong")
    use_follower(monkeypatch)
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=True)
    with pytest.raises(AuthError, match="mix-up"):
        await credentials.on_unauthorized(None)
    assert server.stats()["token_exchanges"] == 0
    assert await credentials.headers("POST", server.mcp_url) == {}


async def test_concurrent_first_calls_share_one_login(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server()
    use_follower(monkeypatch)
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=True)
    results = await asyncio.gather(*(credentials.on_unauthorized(None) for _ in range(8)))
    assert all(results)
    stats = server.stats()
    assert (stats["authorize_requests"], stats["token_exchanges"]) == (1, 1)


async def test_a_call_that_needs_a_login_gets_an_error_naming_the_command(
    auth_server: AuthServerFactory, oauth: OAuthPeers
) -> None:
    server = auth_server()
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=False)
    client = oauth.client(credentials)
    await client.transport.start(client.inbox.deliver)
    await client.transport.send(initialize_request("init"))
    reply = await client.inbox.response("init", 10)
    assert "error" in reply
    assert f"mcp-bridge login {server.mcp_url}" in reply["error"]["message"]
