"""`mcp-bridge run` against OAuth-protected servers, as a desktop client would meet it: the
bridge process logs in by itself on the first 401 (the browser is a $BROWSER script that
follows redirects), keeps the tokens in its vault, and a second process reuses them."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from mcp_bridge.paths import bridge_paths
from mcp_bridge.store.selection import open_vault
from tests.fixtures.auth_server import AuthServerFactory, TsAuthServer
from tests.fixtures.bridge_process import echo, oauth_env, running_bridge
from tests.fixtures.mcp_servers import text_of

SECRET_FIELDS = ("access_token", "refresh_token")


async def test_first_call_logs_in_and_a_second_process_reuses_the_login(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        init = await bridge.initialize()
        assert "result" in init, init
        assert text_of(await echo(bridge, "signed in")) == "signed in"
        assert await bridge.close_stdin_and_wait() == 0
    after_first = server.stats()
    assert (after_first["registrations"], after_first["authorizations"]) == (1, 1)

    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "again")) == "again"
        assert await bridge.close_stdin_and_wait() == 0
    after_second = server.stats()
    assert (after_second["registrations"], after_second["authorizations"]) == (1, 1)

    status = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mcp_bridge",
        "status",
        env={**os.environ, "MCP_BRIDGE_HOME": str(bridge_home), **oauth_env()},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(status.communicate(), 60)
    assert status.returncode == 0
    shown = out.decode()
    assert server.mcp_url in shown
    assert f"issuer {server.issuer}" in shown
    assert "refreshable" in shown
    for secret in await stored_secrets(bridge_home):
        assert secret not in shown + err.decode()


async def test_two_processes_meeting_the_same_401_sign_in_once(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    """A host runs two copies of a server (Claude Desktop's two lanes): one browser login."""
    server = auth_server()
    async with (
        running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as first,
        running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as second,
    ):
        replies = await asyncio.gather(first.initialize(), second.initialize())
        assert all("result" in reply for reply in replies), replies
        for bridge in (first, second):
            assert text_of(await echo(bridge, "both")) == "both"
    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"]) == (1, 1)


async def stored_secrets(home: Path) -> list[str]:
    """Every access and refresh token in the bridge's vault at `home`."""
    vault = open_vault("keyfile", paths=bridge_paths({"MCP_BRIDGE_HOME": str(home)}))
    secrets: list[str] = []
    async with vault.transaction() as txn:
        for key in txn.keys("tokens"):
            record = txn.get("tokens", key) or {}
            secrets += [record[name] for name in SECRET_FIELDS if record.get(name)]
    assert secrets, "the login left no tokens in the vault"
    return secrets


async def test_a_lying_authorization_server_gets_a_clear_refusal_and_no_token_is_spent(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(iss="wrong")
    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        refused = await bridge.initialize()
        assert "iss" in refused["error"]["message"], refused
        assert bridge.process.returncode is None
    assert server.stats()["token_exchanges"] == 0


async def test_a_static_authorization_header_turns_oauth_off(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    args = (server.mcp_url, "--header", "Authorization: Bearer ${NOT_A_TOKEN}")
    env = {**oauth_env(), "NOT_A_TOKEN": "not-a-valid-token"}
    async with running_bridge(bridge_home, *args, env=env) as bridge:
        refused = await bridge.initialize()
        assert "error" in refused
        assert "not-a-valid-token" not in refused["error"]["message"]
    assert server.stats()["authorizations"] == 0


@pytest.mark.peers
async def test_the_typescript_sdk_demo_oauth_server_through_run(
    ts_auth_server: TsAuthServer, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, ts_auth_server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        greeting = await bridge.request(
            "tools/call", {"name": "greet", "arguments": {"name": "bridge"}}
        )
        assert "bridge" in text_of(greeting)
