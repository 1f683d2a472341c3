"""`mcp-bridge login URL`, then `run URL`, against a server whose authorization is optional
(the TypeScript SDK's `withMcpAuth` with `required: false`; the fixture's
`auth_required=False`): it publishes protected-resource metadata but never answers 401, and
its tools answer "Unauthorized" to a call without a valid token. Nothing ever challenges
the bridge, so the stored login must go on every request from the first one."""

from __future__ import annotations

import asyncio
import importlib.util
from pathlib import Path

import aiohttp
import pytest

from mcp_bridge.cli.app import run_cli
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.bridge_process import echo, oauth_env, running_bridge
from tests.fixtures.mcp_servers import text_of

ACCESS_TTL_S = 2.0  # short-lived access tokens, for the refresh test
TOOL_CALL = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "tools/call",
    "params": {
        "name": "echo",
        "arguments": {"text": "anyone?"},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "t", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {},
        },
    },
}
ANONYMOUS = {
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2026-07-28",
    "Mcp-Method": "tools/call",
    "Mcp-Name": "echo",
}

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


@pytest.mark.parametrize("run_flags", [(), ("--no-daemon",)], ids=["daemon", "in-process"])
async def test_without_a_login_the_bridge_signs_in_because_the_metadata_asks_for_it(
    auth_server: AuthServerFactory,
    bridge_home: Path,
    run_flags: tuple[str, ...],
    http: aiohttp.ClientSession,
) -> None:
    """The server never answers 401; its resource metadata naming an authorization server
    is the only sign that it wants OAuth: a request with no login starts one."""
    server = auth_server(auth_required=False)
    # The peer really answers "Unauthorized", with a 200.
    async with http.post(server.mcp_url, json=TOOL_CALL, headers=ANONYMOUS) as response:
        assert response.status == 200
        assert "Unauthorized" in await response.text()
    args = (*run_flags, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "anyone there?")) == "anyone there?"
        assert await bridge.close_stdin_and_wait() == 0
    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"], stats["unauthorized"]) == (1, 1, 0)


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
