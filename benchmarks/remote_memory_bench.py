"""Remote memory benchmark (issue 8, B): the bridge's peak RSS while it relays one large
tool result, against its idle RSS. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/remote_memory_bench.py [--mb 20]

The remote is a small legacy Streamable HTTP server in this process that answers
`tools/call` with MB of text, as a JSON body and then as one SSE event (the SDK's server
answers the bridge's 2026-07-28 requests with JSON only). The bridge runs on its own
(`--no-daemon`, so the process measured is the one that reads the remote); its VmRSS once
the session is up is the idle figure, its VmHWM after the call the peak. Then the same
through a fresh daemon: the daemon's figures, and the shim's (which copies the line). The
payload is the response line the client receives. Target: peak - idle <= 2 x payload.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web
from relay_bench import (
    INITIALIZE,
    PipeClient,
    peak_rss_mb,
    piped_bridge,
    proc_mb,
    processes_under,
)

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
    """`run --no-daemon`: the process that reads the remote is the one measured."""
    async with big_result_server(mb, sse) as url, piped_bridge(url, env) as bridge:
        pid = bridge.process.pid
        idle = await _ready(bridge)
        big, elapsed = await _call_big(bridge)
        peak, after = peak_rss_mb(pid), proc_mb(pid, "VmRSS")
        await bridge.close()
    payload = _payload_mb(big)
    print(
        f"\n{'SSE event' if sse else 'JSON body'}: {payload:.1f} MB line in {elapsed * 1000:.0f} ms"
    )
    print(f"  bridge RSS idle {idle:6.1f} MB, peak (VmHWM) {peak:6.1f} MB, after {after:6.1f} MB")
    print(f"  (peak - idle) / payload = {(peak - idle) / payload:.2f}   (target <= 2)")


async def measure_daemon(mb: int, env: dict[str, str]) -> None:
    """Through a fresh daemon: the daemon reads the remote, the shim copies the line."""
    home = Path(env["MCP_BRIDGE_HOME"]) / "daemon"
    daemon_env = {**env, "MCP_BRIDGE_HOME": str(home)}
    shim = [sys.executable, "-m", "mcp_bridge", "run"]
    async with big_result_server(mb, False) as url, piped_bridge(url, daemon_env, shim) as bridge:
        await _ready(bridge)
        daemon = _daemon_pid(home)
        idle = proc_mb(daemon, "VmRSS")
        shim_idle = proc_mb(bridge.process.pid, "VmRSS")
        big, elapsed = await _call_big(bridge)
        peak, shim_peak = peak_rss_mb(daemon), peak_rss_mb(bridge.process.pid)
        # The other way: a request as large (the server refuses it; the shim carried it).
        upload = {"name": "blob", "arguments": {"text": "x" * (mb << 20)}}
        await bridge.request("tools/call", upload)
        shim_upload_peak = peak_rss_mb(bridge.process.pid)
        await bridge.close()
        os.kill(daemon, signal.SIGTERM)
    payload = _payload_mb(big)
    print(f"\nthrough the daemon, JSON body: {payload:.1f} MB line in {elapsed * 1000:.0f} ms")
    print(f"  daemon RSS idle {idle:6.1f} MB, peak (VmHWM) {peak:6.1f} MB")
    print(f"  (peak - idle) / payload = {(peak - idle) / payload:.2f}   (target <= 2)")
    print(
        f"  shim RSS idle {shim_idle:6.1f} MB, peak {shim_peak:6.1f} MB: "
        f"(peak - idle) / payload = {(shim_peak - shim_idle) / payload:.2f}"
    )
    print(
        f"  a {mb} MB request, client to daemon: shim peak {shim_upload_peak:6.1f} MB: "
        f"(peak - idle) / payload = {(shim_upload_peak - shim_idle) / mb:.2f}"
    )


async def _ready(bridge: PipeClient) -> float:
    await bridge.request("initialize", INITIALIZE)
    await bridge.notify("notifications/initialized")
    await bridge.request("tools/list", {})
    return proc_mb(bridge.process.pid, "VmRSS")


async def _call_big(bridge: PipeClient) -> tuple[dict[str, object], float]:
    started = time.perf_counter()
    big = await bridge.request("tools/call", {"name": "blob", "arguments": {}})
    elapsed = time.perf_counter() - started
    if "result" not in big:
        raise SystemExit(f"the call failed: {big.get('error')}")
    return big, elapsed


def _payload_mb(big: dict[str, object]) -> float:
    return len(jsonrpc.encode(big)) / 2**20  # the line as the bridge wrote it


def _daemon_pid(home: Path) -> int:
    """The daemon the shim started for `home`."""
    for pid, argv in processes_under(home):
        if b"daemon" in argv:
            return pid
    raise SystemExit("the shim's daemon was not found")


async def main(mb: int) -> None:
    env = {**os.environ, "MCP_BRIDGE_HOME": str(Path("/tmp") / f"mcp-bridge-bench-{os.getpid()}")}
    print(f"a {mb} MB tool result through `mcp-bridge run --no-daemon` ({os.cpu_count()} cores)")
    for sse in (False, True):
        await measure(mb, sse, env)
    await measure_daemon(mb, env)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=20, help="MB of text in the result")
    asyncio.run(main(parser.parse_args().mb))
