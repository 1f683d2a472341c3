"""Message order across the connect: what a client sends right after its first request must
not be lost while the bridge is still reaching the remote.

An HTTP+SSE server may put its `initialize` answer on the event stream before it finishes
the POST that carried the request (seen with aiohttp- and express-based servers under load);
the client then sends `notifications/initialized` while the bridge is still connecting. No
real peer does this on demand, so this is a small aiohttp server that always does.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.fixtures.bridge_process import running_bridge


@pytest.fixture
async def slow_acking_sse_server() -> AsyncIterator[tuple[str, list[str]]]:
    received: list[str] = []
    events: asyncio.Queue[dict[str, object]] = asyncio.Queue()

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: endpoint\ndata: /messages\n\n")
        while True:
            message = await events.get()
            await response.write(f"event: message\ndata: {json.dumps(message)}\n\n".encode())

    async def post(request: web.Request) -> web.Response:
        body = await request.json()
        received.append(body.get("method", "a response"))
        if body.get("method") == "initialize":
            result = {
                "protocolVersion": "2024-11-05",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "slow-ack", "version": "1"},
            }
            await events.put({"jsonrpc": "2.0", "id": body["id"], "result": result})
            await asyncio.sleep(0.5)  # the answer is on the stream; the 202 comes later
        elif body.get("method") == "tools/list":
            await events.put({"jsonrpc": "2.0", "id": body["id"], "result": {"tools": []}})
        return web.Response(status=202)

    app = web.Application()
    app.router.add_get("/sse", stream)
    app.router.add_post("/messages", post)
    runner = web.AppRunner(app, shutdown_timeout=0.5)  # its event stream never ends itself
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/sse", received
    finally:
        await runner.cleanup()


async def test_initialized_sent_while_connecting_still_reaches_the_server(
    slow_acking_sse_server: tuple[str, list[str]], bridge_home: Path
) -> None:
    url, received = slow_acking_sse_server
    async with running_bridge(bridge_home, url, "--transport", "sse") as bridge:
        init = await bridge.initialize()  # sends notifications/initialized at once after
        assert init["result"]["serverInfo"]["name"] == "slow-ack"
        assert "result" in await bridge.request("tools/list")
    assert received[:3] == ["initialize", "notifications/initialized", "tools/list"]
