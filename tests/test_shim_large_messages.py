"""Large messages through a real shim and daemon to a real MCP server: the shim passes
the daemon's bytes on as they come (shim/daemon_lines.py) and the client's line on with
its own newline; what arrives is whole, on its own line, and in order with what the
shim answers itself meanwhile."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fixtures.bridge_process import echo, running_bridge
from tests.fixtures.mcp_servers import ServerProcess, text_of

TEXT = "0123456789abcdef" * (3 * 2**20 // 16)  # 3 MB: many reads, past the parse limit


async def test_a_large_reply_arrives_whole_beside_a_small_one(
    sdk_stateful: ServerProcess, bridge_home: Path, daemon_transport: str
) -> None:
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        assert "result" in await bridge.initialize()
        large, small = await asyncio.gather(echo(bridge, TEXT), echo(bridge, "small"))
        assert text_of(large) == TEXT
        assert text_of(small) == "small"
        assert text_of(await echo(bridge, "after")) == "after"
        assert await bridge.close_stdin_and_wait() == 0
