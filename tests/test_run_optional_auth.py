"""`mcp-bridge login URL`, then `run URL`, against a server whose authorization is optional
(the TypeScript SDK's `withMcpAuth` with `required: false`; the fixture's
`auth_required=False`): it publishes protected-resource metadata but never answers 401, and
its tools answer "Unauthorized" to a call without a valid token. Nothing ever challenges
the bridge, so the stored login must go on every request from the first one."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import pytest

from mcp_bridge.cli.app import run_cli
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.bridge_process import echo, oauth_env, running_bridge
from tests.fixtures.mcp_servers import text_of

ACCESS_TTL_S = 2.0  # short-lived access tokens, for the refresh test

needs_daemon = pytest.mark.skipif(
    importlib.util.find_spec("mcp_bridge.daemon") is None,
    reason="the per-user daemon (mcp_bridge.daemon) has not landed yet",
)


async def mcp_bridge_in_process(home: Path, monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    """`mcp-bridge ARGV` in this process (in a thread: the CLI runs its own event loop),
    with the bridge's home, key-file vault and redirect-following browser of `oauth_env`."""
    for name, value in {**oauth_env(), "MCP_BRIDGE_HOME": str(home)}.items():
        monkeypatch.setenv(name, value)
    return await asyncio.to_thread(run_cli, list(argv))


async def log_in(server: AuthServer, home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert await mcp_bridge_in_process(home, monkeypatch, "login", server.mcp_url) == 0
    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"]) == (1, 1)


async def test_without_a_login_the_optional_auth_server_answers_tools_unauthorized(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(auth_required=False)
    args = ("--no-daemon", server.mcp_url)
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        refused = await echo(bridge, "anyone there?")
        assert refused["result"]["isError"] is True, refused
        assert text_of(refused) == "Unauthorized"
        assert await bridge.close_stdin_and_wait() == 0
    stats = server.stats()  # nothing challenged the bridge: it never tried to sign in
    assert (stats["registrations"], stats["authorize_requests"]) == (0, 0)


@pytest.mark.parametrize(
    "run_flags",
    [
        pytest.param(("--no-daemon",), id="in-process"),
        pytest.param((), id="through-the-daemon", marks=needs_daemon),
    ],
)
async def test_after_login_the_first_call_carries_the_stored_token(
    auth_server: AuthServerFactory,
    bridge_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    run_flags: tuple[str, ...],
) -> None:
    server = auth_server(auth_required=False)
    await log_in(server, bridge_home, monkeypatch)
    try:
        args = (*run_flags, server.mcp_url)
        async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
            assert "result" in await bridge.initialize()
            assert text_of(await echo(bridge, "signed in")) == "signed in"  # not Unauthorized
            assert await bridge.close_stdin_and_wait() == 0
    finally:
        if not run_flags:  # the bridge started a daemon under bridge_home: stop it
            await mcp_bridge_in_process(bridge_home, monkeypatch, "daemon", "stop")
    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"]) == (1, 1)  # no second login


async def test_an_expired_stored_token_is_refreshed_before_the_call(
    auth_server: AuthServerFactory, bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = auth_server(auth_required=False, access_ttl_s=ACCESS_TTL_S)
    await log_in(server, bridge_home, monkeypatch)
    args = ("--no-daemon", server.mcp_url)
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "before")) == "before"
        await asyncio.sleep(ACCESS_TTL_S + 1)  # every access token issued so far has expired
        assert text_of(await echo(bridge, "after expiry")) == "after expiry"
        assert await bridge.close_stdin_and_wait() == 0
    stats = server.stats()
    assert stats["refreshes"] >= 1
    assert (stats["registrations"], stats["authorizations"]) == (1, 1)
