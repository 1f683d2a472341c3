"""Remote memory benchmark (issue 8, B): the bridge's peak RSS while it relays one large
tool result, against its idle RSS. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/remote_memory_bench.py [--mb 20]

The remote is a small legacy Streamable HTTP server in this process that answers
`tools/call` with MB of text, as a JSON body and then as one SSE event (the SDK's server
answers the bridge's 2026-07-28 requests with JSON only). The bridge runs on its own
(`--no-daemon`, so the process measured is the one that reads the remote); its VmRSS once
the session is up is the idle figure, its VmHWM after the call the peak. The payload is
the response line the client receives. Target: peak - idle <= 2 x payload.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from relay_bench import INITIALIZE, peak_rss_mb, piped_bridge, proc_mb

from mcp_bridge import jsonrpc


@contextlib.asynccontextmanager
async def big_result_server(mb: int, sse: bool) -> AsyncIterator[str]:
    """A legacy server (no server/discover: 400) whose `tools/call` returns `mb` MB of text."""
    text = "x" * (mb << 20)

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return web.Response(status=405)
        body = await request.json()
        method, request_id = body.get("method"), body.get("id")
        if method == "server/discover":
            return web.Response(status=400)
        if request_id is None:
            return web.Response(status=202)
        if method == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}}}
            result["serverInfo"] = {"name": "big", "version": "1"}
            answer = jsonrpc.result_response(request_id, result)
            return web.json_response(answer, headers={"Mcp-Session-Id": "bench"})
        content = [{"type": "text", "text": text if method == "tools/call" else "ok"}]
        line = jsonrpc.encode(jsonrpc.result_response(request_id, {"content": content}))
        if not sse:
            return web.Response(body=line, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: message\ndata: " + line + b"\n\n")
        return response

    app = web.Application(client_max_size=1 << 20)
    app.router.add_route("*", "/mcp", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/mcp"
    finally:
        await runner.cleanup()


async def measure(mb: int, sse: bool, env: dict[str, str]) -> None:
    async with big_result_server(mb, sse) as url, piped_bridge(url, env) as bridge:
        pid = bridge.process.pid
        await bridge.request("initialize", INITIALIZE)
        await bridge.notify("notifications/initialized")
        await bridge.request("tools/list", {})
        idle = proc_mb(pid, "VmRSS")
        started = time.perf_counter()
        big = await bridge.request("tools/call", {"name": "blob", "arguments": {}})
        elapsed = time.perf_counter() - started
        peak, after = peak_rss_mb(pid), proc_mb(pid, "VmRSS")
        await bridge.close()
    if "result" not in big:
        raise SystemExit(f"the call failed: {big.get('error')}")
    payload = len(jsonrpc.encode(big)) / 2**20  # the line as the bridge wrote it
    print(
        f"\n{'SSE event' if sse else 'JSON body'}: {payload:.1f} MB line in {elapsed * 1000:.0f} ms"
    )
    print(f"  bridge RSS idle {idle:6.1f} MB, peak (VmHWM) {peak:6.1f} MB, after {after:6.1f} MB")
    print(f"  (peak - idle) / payload = {(peak - idle) / payload:.2f}   (target <= 2)")


async def main(mb: int) -> None:
    env = {**os.environ, "MCP_BRIDGE_HOME": str(Path("/tmp") / f"mcp-bridge-bench-{os.getpid()}")}
    print(f"a {mb} MB tool result through `mcp-bridge run --no-daemon` ({os.cpu_count()} cores)")
    for sse in (False, True):
        await measure(mb, sse, env)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=20, help="MB of text in the result")
    asyncio.run(main(parser.parse_args().mb))
