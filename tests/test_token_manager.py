"""TokenManager against the fixture AS with short-lived tokens: restart without a browser,
refresh over a run of calls, one refresh for many concurrent callers and for two
"processes" sharing one file vault, invalid_grant -> exactly one new login, a client the AS
forgot registered again, the background timer. What it does with the tokens a past login
stored (an AS that is down, another resource's tokens) is in
test_token_manager_stored_tokens.py."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path

import aiohttp
import pytest

from mcp_bridge.auth.http_step import run_step
from mcp_bridge.auth.refresh_timing import refresh_margin_s
from mcp_bridge.auth.token_endpoint import revoke_token
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.oauth_client import OAuthPeers, text_of, use_follower
from tests.fixtures.vault_checks import keyfile_vault

log = logging.getLogger(__name__)

# The refresh run lasts this long (the brief's figure is from a full 60 s run); set
# MCP_BRIDGE_REFRESH_RUN_S=10 to shorten it.
REFRESH_RUN_S = float(os.environ.get("MCP_BRIDGE_REFRESH_RUN_S", "60"))
TTL_S = 2.0


async def wait_until_expired(tokens: TokenSet | None) -> None:
    assert tokens is not None
    assert tokens.expires_at is not None
    await asyncio.sleep(max(tokens.expires_at - time.time(), 0) + 0.3)


def test_refresh_margin_is_a_fifth_of_a_short_lifetime_and_a_minute_otherwise() -> None:
    short = TokenSet("a", "https://as", "https://rs", expires_at=102.0)
    assert refresh_margin_s(short, received_at=100.0) == pytest.approx(0.4)
    long = TokenSet("a", "https://as", "https://rs", expires_at=100.0 + 3600)
    assert refresh_margin_s(long, received_at=100.0) == 60.0
    assert refresh_margin_s(long, received_at=None) == 60.0


async def test_restart_refreshes_without_a_browser(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    oauth: OAuthPeers,
) -> None:
    server = auth_server(access_ttl_s=TTL_S)
    use_follower(monkeypatch)
    first = oauth.credentials(server.mcp_url, keyfile_vault(tmp_path), interactive=True)
    await first.login()
    await first.aclose()
    await wait_until_expired(first.manager.tokens)

    # "After a restart": a new provider on the same vault, which may not open a browser.
    second = oauth.credentials(server.mcp_url, keyfile_vault(tmp_path), interactive=False)
    client = oauth.client(second)
    assert "result" in await client.start()  # refreshed, no browser
    assert text_of(await client.call("echo", "after restart")) == "after restart"
    stats = server.stats()
    assert stats["authorizations"] == 1
    assert stats["refreshes"] >= 1


async def test_a_run_of_calls_with_two_second_tokens_never_logs_in_again(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server(access_ttl_s=TTL_S)
    use_follower(monkeypatch)
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=True)
    client = await oauth.started_client(credentials)

    calls = failures = 0
    deadline = time.monotonic() + REFRESH_RUN_S
    while time.monotonic() < deadline:
        reply = await client.call("echo", str(calls))
        calls += 1
        if reply.get("result", {}).get("content", [{}])[0].get("text") != str(calls - 1):
            failures += 1
        await asyncio.sleep(0.05)

    stats = server.stats()
    log.warning(
        "refresh run: %.0f s, %d calls, %d failed, %d refreshes, %d logins, %d reuse detections",
        REFRESH_RUN_S,
        calls,
        failures,
        stats["refreshes"],
        stats["authorizations"],
        stats["reuse_detections"],
    )
    assert failures == 0
    assert stats["authorizations"] == 1
    assert stats["reuse_detections"] == 0
    assert stats["refreshes"] >= REFRESH_RUN_S / TTL_S / 2  # it really did renew


async def test_concurrent_calls_at_expiry_spend_one_refresh(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server(access_ttl_s=TTL_S)
    use_follower(monkeypatch)
    credentials = oauth.credentials(
        server.mcp_url,
        MemoryVault(),
        interactive=True,
        background_refresh=False,  # so the callers, not the timer, meet the expiry
    )
    client = await oauth.started_client(credentials)
    await wait_until_expired(credentials.manager.tokens)

    replies = await asyncio.gather(*(client.call("echo", str(n)) for n in range(16)))

    assert [text_of(reply) for reply in replies] == [str(n) for n in range(16)]
    stats = server.stats()
    assert stats["refreshes"] == 1
    assert stats["reuse_detections"] == 0
    assert stats["authorizations"] == 1


async def test_two_processes_sharing_a_vault_spend_the_refresh_token_once(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    oauth: OAuthPeers,
    bridge_http: aiohttp.ClientSession,
) -> None:
    server = auth_server(access_ttl_s=TTL_S)
    use_follower(monkeypatch)
    login = oauth.credentials(
        server.mcp_url,
        keyfile_vault(tmp_path),
        interactive=True,
        background_refresh=False,  # only the two managers below may refresh
    )
    await login.login()
    one = oauth.token_manager(server.mcp_url, keyfile_vault(tmp_path), bridge_http)
    two = oauth.token_manager(server.mcp_url, keyfile_vault(tmp_path), bridge_http)
    await asyncio.gather(one.load(), two.load())
    await wait_until_expired(one.tokens)

    fresh_one, fresh_two = await asyncio.gather(one.fresh_tokens(), two.fresh_tokens())

    assert fresh_one.access_token == fresh_two.access_token
    assert one.refresh_count + two.refresh_count == 1
    stats = server.stats()
    assert stats["refreshes"] == 1
    assert stats["reuse_detections"] == 0


async def test_invalid_grant_drops_the_tokens_and_logs_in_exactly_once(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
    bridge_http: aiohttp.ClientSession,
) -> None:
    server = auth_server()
    use_follower(monkeypatch)
    vault = MemoryVault()
    credentials = oauth.credentials(server.mcp_url, vault, interactive=True)
    client = await oauth.started_client(credentials)
    manager = credentials.manager
    assert manager.context is not None
    assert manager.client is not None
    assert manager.tokens is not None
    # The AS revokes the whole grant (as after reuse detection or a password change).
    step = revoke_token(manager.context.auth_server, manager.client, manager.tokens)
    assert await run_step(step, bridge_http, policy=UrlPolicy.for_server(server.mcp_url))

    assert text_of(await client.call("echo", "again")) == "again"
    assert text_of(await client.call("echo", "and again")) == "and again"

    stats = server.stats()
    assert stats["authorizations"] == 2  # the first login and exactly one more
    assert stats["registrations"] == 1  # on the same callback port: the client is reused
    assert credentials.logins.count == 2


async def test_a_client_the_as_forgot_is_registered_again_once(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server()
    use_follower(monkeypatch)
    vault = MemoryVault()
    credentials = oauth.credentials(server.mcp_url, vault, interactive=True)
    client = await oauth.started_client(credentials)
    server.reset()  # the AS forgets every client and token: refresh gets invalid_client

    assert text_of(await client.call("echo", "back")) == "back"

    stats = server.stats()  # counted since the reset
    assert (stats["registrations"], stats["authorizations"], stats["refreshes"]) == (1, 1, 0)
    assert stats["token_requests"] == 2  # the refused refresh, then the new code exchange


async def test_the_background_timer_refreshes_while_idle(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server(access_ttl_s=TTL_S)
    use_follower(monkeypatch)
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=True)
    await credentials.login()
    first = credentials.manager.tokens
    await wait_until_expired(first)  # nobody calls meanwhile

    assert server.stats()["refreshes"] >= 1
    assert credentials.manager.usable_tokens() is not None
    assert credentials.manager.tokens is not first
