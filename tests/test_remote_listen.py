"""A 2026-07-28 `subscriptions/listen` answer is a stream that may stay silent for hours:
the transport must not give it up after the silence limit that guards ordinary requests.

No real peer idles on demand within a test's time, so a small aiohttp server acknowledges
the listen and then says nothing; an ordinary request to the same server that goes silent
is the control.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from mcp_bridge.jsonrpc import JsonObject, request
from mcp_bridge.protocol import (
    LATEST_MODERN_VERSION,
    META_CLIENT_CAPABILITIES,
    META_PROTOCOL_VERSION,
    Era,
)
from mcp_bridge.remote.endpoint import ConnectOptions
from mcp_bridge.remote.streamable import StreamableHttpTransport

SILENCE_LIMIT_S = 0.5
META = {META_PROTOCOL_VERSION: LATEST_MODERN_VERSION, META_CLIENT_CAPABILITIES: {}}


@pytest.fixture
async def idle_server() -> AsyncIterator[str]:
    async def handler(http_request: web.Request) -> web.StreamResponse:
        body = await http_request.json()
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(http_request)
        if body["method"] == "subscriptions/listen":
            ack = {
                "jsonrpc": "2.0",
                "method": "notifications/subscriptions/acknowledged",
                "params": {"notifications": {"toolsListChanged": True}},
            }
            await response.write(f"event: message\ndata: {json.dumps(ack)}\n\n".encode())
        await asyncio.sleep(60)  # then nothing, for either request
        return response

    app = web.Application()
    app.router.add_post("/mcp", handler)
    runner = web.AppRunner(app, shutdown_timeout=0.5)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/mcp"
    finally:
        await runner.cleanup()


async def test_a_silent_listen_stream_stays_open_while_a_silent_request_fails(
    idle_server: str,
) -> None:
    delivered: list[JsonObject] = []

    async def deliver(message: JsonObject) -> None:
        delivered.append(message)

    transport = StreamableHttpTransport(
        idle_server, Era.MODERN, ConnectOptions(read_timeout_s=SILENCE_LIMIT_S)
    )
    await transport.start(deliver)
    try:
        listen = request("listen-1", "subscriptions/listen", {"notifications": {}, "_meta": META})
        await transport.send(listen)
        await transport.send(request("call-1", "tools/list", {"_meta": META}))
        await asyncio.sleep(SILENCE_LIMIT_S * 6)
    finally:
        await transport.aclose()
    ended = {message.get("id") for message in delivered if "error" in message}
    assert ended == {"call-1"}  # the control went silent and failed; the listen did not
    assert delivered[0]["method"] == "notifications/subscriptions/acknowledged"
