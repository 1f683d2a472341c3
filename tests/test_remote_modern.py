"""2026-07-28 Streamable HTTP against the Python SDK's dual-era MCPServer: no session, routing
headers on every POST (the server checks them against the body), cancel closes the stream."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from mcp_bridge import jsonrpc
from mcp_bridge.protocol import Era
from mcp_bridge.remote.streamable import StreamableHttpTransport
from tests.fixtures.mcp_servers import Inbox, ServerProcess, call_tool, modern_meta, text_of


@pytest.fixture(params=["sdk_stateful", "sdk_stateless"])
def sdk_server(request: pytest.FixtureRequest) -> ServerProcess:
    server: ServerProcess = request.getfixturevalue(request.param)
    return server


@pytest.fixture
async def modern(sdk_server: ServerProcess) -> AsyncIterator[tuple[StreamableHttpTransport, Inbox]]:
    inbox = Inbox()
    transport = StreamableHttpTransport(sdk_server.url, Era.MODERN)
    await transport.start(inbox.deliver)
    yield transport, inbox
    await transport.aclose()


async def test_discover(modern: tuple[StreamableHttpTransport, Inbox]) -> None:
    transport, inbox = modern
    discover = jsonrpc.request(1, "server/discover", {"_meta": modern_meta()})
    await transport.send(discover)
    result = (await inbox.response(1))["result"]
    assert "2026-07-28" in result["supportedVersions"]
    assert transport.session.session_id is None


async def test_tools_call_with_routing_headers(
    modern: tuple[StreamableHttpTransport, Inbox],
) -> None:
    transport, inbox = modern
    # The SDK server rejects a tools/call whose Mcp-Method / Mcp-Name headers are missing or
    # differ from the body (400, -32020): an answer proves the headers were right.
    await transport.send(call_tool(1, "echo", {"text": "modern"}, **modern_meta()))
    assert text_of(await inbox.response(1)) == "modern"


async def test_wrong_routing_header_is_the_servers_error(
    modern: tuple[StreamableHttpTransport, Inbox],
) -> None:
    transport, inbox = modern
    request = call_tool(1, "echo", {"text": "x"}, **modern_meta())
    await transport.send(request, headers={"Mcp-Name": "not-echo"})
    error = (await inbox.response(1))["error"]
    assert error["code"] == jsonrpc.HEADER_MISMATCH  # re-keyed from the 400 body


async def test_progress_streams_before_the_result(
    sdk_stateful: ServerProcess,
) -> None:
    inbox = Inbox()
    transport = StreamableHttpTransport(sdk_stateful.url, Era.MODERN)
    await transport.start(inbox.deliver)
    try:
        await transport.send(
            call_tool(1, "count", {"steps": 3}, progressToken="p", **modern_meta())
        )
        assert text_of(await inbox.response(1)) == "counted 3"
        progress = inbox.with_method("notifications/progress")
        assert [m["params"]["progress"] for m in progress] == [1, 2, 3]
    finally:
        await transport.aclose()


async def test_cancel_closes_the_response_stream(sdk_stateful: ServerProcess) -> None:
    inbox = Inbox()
    transport = StreamableHttpTransport(sdk_stateful.url, Era.MODERN)
    await transport.start(inbox.deliver)
    stats_url = sdk_stateful.url.replace("/mcp", "/stats")
    try:
        async with aiohttp.ClientSession() as http:
            before = await (await http.get(stats_url)).json()
            await transport.send(call_tool("h", "hang", {}, progressToken="h", **modern_meta()))
            # The first progress notification means the SSE stream is open and the tool runs.
            await inbox.wait_for(lambda m: m.get("method") == "notifications/progress")
            await transport.cancel("h")

            async with asyncio.timeout(60):
                while True:
                    stats = await (await http.get(stats_url)).json()
                    if stats["cancelled"] > before["cancelled"]:
                        break
                    await asyncio.sleep(0.1)
        assert [m for m in inbox.messages if m.get("id") == "h"] == []
    finally:
        await transport.aclose()
