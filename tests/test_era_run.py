"""End to end: the SDK's own client, pinned to the legacy handshake, launches
`mcp-bridge run URL` over stdio, and the bridge serves it from a 2026-07-28 MCPServer
(the same server as test_era_remote.py, in this test's loop). Everything between the two
SDK peers is the product: session, transport, era translator. A second test lets the SDK
client negotiate on its own: it goes modern, and the bridge relays its MRTR untouched.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp_types import ElicitRequestParams, ElicitResult, TextContent

from tests.fixtures.daemon_process import stop_daemon

REPO = Path(__file__).resolve().parents[1]


def bridge_command(url: str, home: Path) -> StdioServerParameters:
    # A thin environment, as hosts pass one (docs/desktop-hosts.md), plus an isolated home.
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "MCP_BRIDGE_HOME": str(home)}
    return StdioServerParameters(
        command=sys.executable, args=["-m", "mcp_bridge", "run", url], env=env, cwd=REPO
    )


async def say_yes(context: Any, params: ElicitRequestParams) -> ElicitResult:
    assert params.message == "Deploy to eu-central?"
    return ElicitResult(action="accept", content={"ok": True})


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_sdk_client_calls_an_eliciting_tool_through_mcp_bridge_run(
    remote_url: str,
    tmp_path: Path,
    mode: str,
) -> None:
    client = Client(
        bridge_command(remote_url, tmp_path),
        mode=mode,
        elicitation_callback=say_yes,
        read_timeout_seconds=60,
    )
    async with client:
        expected_version = "2025-11-25" if mode == "legacy" else "2026-07-28"
        assert client.protocol_version == expected_version
        tools = await client.list_tools()
        assert {tool.name for tool in tools.tools} == {"deploy", "touch"}
        result = await client.call_tool("deploy", {"region": "eu-central"})
        assert not result.is_error, result
        assert isinstance(result.content[0], TextContent)
        assert result.content[0].text == "deployed to eu-central: True"
    await asyncio.to_thread(stop_daemon, tmp_path)
