"""The demo MCP server `mcp-bridge demo` talks to: the SDK's MCPServer on 127.0.0.1.

Run as `python -m mcp_bridge.demo.server`; it prints `READY <url>` on stdout once it
listens, so a parent process knows where to connect. Not part of the bridge proper (it
imports the whole SDK, which the bridge itself avoids on its hot path).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

import uvicorn
from mcp.server import MCPServer
from mcp.server.mcpserver import Context


def build_server() -> MCPServer:
    server = MCPServer(
        "mcp-bridge-demo",
        instructions="A tiny server to show mcp-bridge at work.",
        version="1.0",
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--json", action="store_true", help="stateless JSON responses")
    args = parser.parse_args(argv)

    app = build_server().streamable_http_app(json_response=args.json, stateless_http=args.json)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    server = uvicorn.Server(config)
    print(f"READY http://127.0.0.1:{port}/mcp", flush=True)
    asyncio.run(server.serve(sockets=[sock]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
