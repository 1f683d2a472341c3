"""The MCP server the benchmarks call: the SDK's MCPServer on 127.0.0.1, printing
`READY <url>` once it listens. Tools: `noop`, `sleep` (milliseconds) and `blob` (MB of text)."""

from __future__ import annotations

import argparse
import asyncio
import socket

import uvicorn
from mcp.server import MCPServer


def build() -> MCPServer:
    server = MCPServer("bench")

    @server.tool()
    def noop() -> str:
        """Return at once."""
        return "ok"

    @server.tool()
    async def sleep(ms: int) -> str:
        """Wait `ms` milliseconds."""
        await asyncio.sleep(ms / 1000)
        return "slept"

    @server.tool()
    def blob(mb: int) -> str:
        """Return `mb` megabytes of text."""
        return "x" * (mb * 1024 * 1024)

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true", help="stateless JSON responses")
    args = parser.parse_args()
    app = build().streamable_http_app(json_response=args.json, stateless_http=args.json)
    sock = socket.socket()
    # Accepted sockets inherit this on Linux. Without it, uvicorn's separate header and
    # body writes meet the client's delayed ACK and every keep-alive call takes ~40 ms,
    # which would hide what the bridge itself costs.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error"))
    print(f"READY http://127.0.0.1:{port}/mcp", flush=True)
    asyncio.run(server.serve(sockets=[sock]))


if __name__ == "__main__":
    main()
