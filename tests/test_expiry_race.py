"""Issue 8, item 12: right after `mcp-bridge login`, with 2 s tokens, five processes start
together while the token expires under them. A 401 for a token a process thought valid,
with a refresh token in the vault, must end in a refresh (or in adopting the one another
process just made), never in giving up."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import echo, mcp_bridge_cli, oauth_env, running_bridge
from tests.fixtures.mcp_servers import text_of

ACCESS_TTL_S = 2.0
PROCESSES = 5


@pytest.mark.parametrize("mode", [("--no-daemon",), ()], ids=["in-process", "daemon"])
@pytest.mark.parametrize("delay_s", [0.0, 1.2, 1.7])
async def test_processes_started_as_the_token_expires_all_get_in(
    auth_server: AuthServerFactory, bridge_home: Path, delay_s: float, mode: tuple[str, ...]
) -> None:
    server = auth_server(access_ttl_s=ACCESS_TTL_S)
    code, said = await mcp_bridge_cli(bridge_home, "login", server.mcp_url, env=oauth_env())
    assert code == 0, said
    await asyncio.sleep(delay_s)  # the stored token expires while the processes start
    async with contextlib.AsyncExitStack() as stack:
        started = [
            running_bridge(bridge_home, *mode, server.mcp_url, env=oauth_env())
            for _ in range(PROCESSES)
        ]
        bridges = await asyncio.gather(*(stack.enter_async_context(b) for b in started))
        replies = await asyncio.gather(*(bridge.initialize() for bridge in bridges))
        assert [reply.get("error") for reply in replies] == [None] * PROCESSES
        for bridge in bridges:
            assert text_of(await echo(bridge, "in")) == "in"
    stats = server.stats()
    assert (stats["authorizations"], stats["reuse_detections"]) == (1, 0)
