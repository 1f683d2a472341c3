"""`mcp-bridge run` against a server that enforces DPoP (the fixture AS + MCP server in
`dpop` mode with nonces on both), through the daemon and in-process: the login on the first
401, requests with a proof each, a refresh with one, and a second process that takes the
key from the vault and goes on with the tokens bound to it; `login`, `token` and `doctor`
with a bound login."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcp_bridge.auth.auth_records import DPOP_KEYS
from mcp_bridge.paths import bridge_paths
from mcp_bridge.store.selection import open_vault
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import echo, mcp_bridge_cli, oauth_env, running_bridge
from tests.fixtures.daemon_process import stop_daemon
from tests.fixtures.doctor_cli import doctor
from tests.fixtures.mcp_servers import text_of

MODES = pytest.mark.parametrize("run_flags", [(), ("--no-daemon",)], ids=["daemon", "in-process"])


async def stored_key(home: Path) -> dict[str, object]:
    vault = open_vault("keyfile", paths=bridge_paths({"MCP_BRIDGE_HOME": str(home)}))
    async with vault.transaction() as txn:
        (server,) = txn.keys(DPOP_KEYS)
        key = txn.get(DPOP_KEYS, server)
    assert key is not None
    return dict(key)


async def calls(home: Path, url: str, run_flags: tuple[str, ...], *texts: str) -> None:
    """One `run` process: the handshake and an echo of each text, a pause between."""
    async with running_bridge(home, *run_flags, url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        for text in texts:
            assert text_of(await echo(bridge, text)) == text
            await asyncio.sleep(0 if text == texts[-1] else 2.5)
        assert await bridge.close_stdin_and_wait() == 0
    await asyncio.to_thread(stop_daemon, home)  # the next `run` starts afresh


@MODES
async def test_run_logs_in_refreshes_and_a_restart_goes_on_with_the_same_key(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    server = auth_server(dpop=True, dpop_nonce=True, access_ttl_s=2)
    await calls(bridge_home, server.mcp_url, run_flags, "first", "after a refresh")
    key = await stored_key(bridge_home)
    first = server.stats()
    assert first["authorizations"] == 1
    assert first["refreshes"] >= 1
    assert first["dpop_bound_grants"] == 1 + first["refreshes"]

    # A new process (and a new daemon): the key comes from the vault; the access token
    # has expired, so the bound refresh token is spent with a proof of that same key.
    await asyncio.sleep(2.5)
    await calls(bridge_home, server.mcp_url, run_flags, "after a restart")
    assert await stored_key(bridge_home) == key
    second = server.stats()
    assert second["authorizations"] == 1
    assert second["refreshes"] > first["refreshes"]
    assert second["dpop_refusals"] == 0
    assert second["dpop_resource_requests"] > first["dpop_resource_requests"]
    vault_bytes = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)}).vault_file.read_bytes()
    assert str(key["d"]).encode() not in vault_bytes  # encrypted at rest, as the tokens


@MODES
async def test_login_then_run_uses_the_bound_token_without_a_refresh(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    server = auth_server(dpop=True)
    code, said = await mcp_bridge_cli(bridge_home, "login", server.mcp_url, env=oauth_env())
    assert code == 0, said
    await calls(bridge_home, server.mcp_url, run_flags, "bound")
    stats = server.stats()
    assert (stats["authorizations"], stats["refreshes"], stats["dpop_bound_grants"]) == (1, 0, 1)
    assert stats["dpop_resource_requests"] >= 2
    assert stats["dpop_refusals"] == 0
    key = await stored_key(bridge_home)
    assert str(key["d"]) not in said
    # `token` prints a token for curl: a bound one would be useless there, so it says why.
    code, said = await mcp_bridge_cli(bridge_home, "token", server.mcp_url, env=oauth_env())
    assert code != 0
    assert "bound to a DPoP key" in said
    assert "mcp-bridge run" in said


async def test_doctor_presents_a_bound_token_with_a_proof_and_changes_nothing(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(dpop=True, dpop_nonce=True)
    code, said = await mcp_bridge_cli(bridge_home, "login", server.mcp_url, env=oauth_env())
    assert code == 0, said
    vault = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)}).vault_file
    before = (vault.read_bytes(), server.stats())

    code, report = await doctor(bridge_home, server.mcp_url)

    transport = report["by_step"]["transport"]
    assert transport["outcome"] == "pass", transport
    stats = server.stats()
    # The era probes went through with the stored token and a proof each, after one
    # use_dpop_nonce; nothing was refreshed, granted or written.
    assert stats["dpop_resource_requests"] > before[1]["dpop_resource_requests"]
    assert stats["dpop_rs_nonce_challenges"] == before[1]["dpop_rs_nonce_challenges"] + 1
    assert stats["dpop_refusals"] == 0
    for counter in ("authorizations", "token_exchanges", "refreshes", "dpop_bound_grants"):
        assert stats[counter] == before[1][counter], counter
    assert vault.read_bytes() == before[0]
