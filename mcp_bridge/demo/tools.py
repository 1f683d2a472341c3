"""The demo MCP server's tools, on the SDK's MCPServer: what `mcp-bridge demo` calls.

Not part of the bridge proper: it imports the whole SDK, which the bridge itself avoids on
its hot path. The demo's protected MCP server (resource_server.py) serves these behind OAuth.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mcp.server import MCPServer
from mcp.server.mcpserver import Context


def build_server(name: str = "mcp-bridge-demo", **settings: Any) -> MCPServer[Any]:
    """An MCPServer with `echo`, `add` and `countdown` (progress); `settings` go to
    MCPServer (e.g. `token_verifier=` and `auth=` to protect it)."""
    server: MCPServer[Any] = MCPServer(
        name,
        instructions="A tiny server to show mcp-bridge at work.",
        version="1.0",
        **settings,
    )

    @server.tool()
    def echo(text: str) -> str:
        """Say the text back."""
        return text

    @server.tool()
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool()
    async def countdown(start: int, ctx: Context) -> str:
        """Count down to zero, reporting progress on the way."""
        for step in range(start):
            await ctx.report_progress(step + 1, start, f"{start - step - 1} to go")
            await asyncio.sleep(0.05)
        return "liftoff"

    return server
