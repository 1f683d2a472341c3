"""connect(): era and transport detection against real servers of each kind, and the
HTTP+SSE transport against server-everything's `sse` mode."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from mcp_bridge import jsonrpc
from mcp_bridge.errors import RemoteError
from mcp_bridge.protocol import Era, TransportKind
from mcp_bridge.remote.detect import RemoteConnection, connect
from mcp_bridge.remote.legacy_sse import LegacySseTransport
from mcp_bridge.remote.streamable import StreamableHttpTransport
from tests.fixtures.mcp_servers import (
    INITIALIZED,
    Inbox,
    ServerProcess,
    call_tool,
    free_port,
    initialize_request,
    modern_meta,
    text_of,
)


@contextlib.asynccontextmanager
async def auto_connected(url: str, inbox: Inbox) -> AsyncIterator[RemoteConnection]:
    """connect() with detection, opening with the client's initialize; closed at the end."""
    connection = await connect(
        url, TransportKind.AUTO, inbox.deliver, initialize=initialize_request(0)
    )
    try:
        yield connection
    finally:
        await connection.transport.aclose()


@contextlib.asynccontextmanager
async def sse_started(url: str, inbox: Inbox) -> AsyncIterator[LegacySseTransport]:
    transport = LegacySseTransport(url)
    await transport.start(inbox.deliver)
    try:
        yield transport
    finally:
        await transport.aclose()


async def test_auto_picks_modern_for_the_sdk_server(sdk_stateful: ServerProcess) -> None:
    inbox = Inbox()
    async with auto_connected(sdk_stateful.url, inbox) as connection:
        assert connection.era is Era.MODERN
        assert connection.kind is TransportKind.STREAMABLE_HTTP
        assert connection.discover_result is not None
        assert "2026-07-28" in connection.discover_result["supportedVersions"]
        assert not connection.initialize_sent
        assert inbox.messages == []  # the discover answer is the bridge's, not the client's
        await connection.transport.send(call_tool(1, "echo", {"text": "modern"}, **modern_meta()))
        assert text_of(await inbox.response(1)) == "modern"


@pytest.mark.peers
async def test_auto_picks_legacy_streamable_for_everything(
    everything_streamable: ServerProcess,
) -> None:
    inbox = Inbox()
    async with auto_connected(everything_streamable.url, inbox) as connection:
        assert connection.era is Era.LEGACY
        assert connection.kind is TransportKind.STREAMABLE_HTTP
        assert connection.initialize_sent
        assert (await inbox.response(0))["result"]["protocolVersion"] == "2025-11-25"
        # The session detection opened is the one the transport goes on using.
        transport = connection.transport
        assert isinstance(transport, StreamableHttpTransport)
        assert transport.session.session_id is not None
        await transport.send(INITIALIZED)
        await transport.send(call_tool(1, "echo", {"message": "after detection"}))
        assert "after detection" in text_of(await inbox.response(1))


@pytest.mark.peers
async def test_auto_picks_sse_for_everything_sse(everything_sse: ServerProcess) -> None:
    inbox = Inbox()
    async with auto_connected(everything_sse.url, inbox) as connection:
        assert connection.era is Era.LEGACY
        assert connection.kind is TransportKind.SSE
        assert connection.initialize_sent
        assert "result" in await inbox.response(0)


@pytest.mark.peers
async def test_sse_transport_list_call_and_progress(everything_sse: ServerProcess) -> None:
    inbox = Inbox()
    async with sse_started(everything_sse.url, inbox) as transport:
        assert transport.endpoint is not None
        assert transport.endpoint.startswith(everything_sse.url.removesuffix("/sse"))
        await transport.send(initialize_request("init"))
        assert "result" in await inbox.response("init")
        await transport.send(INITIALIZED)
        await transport.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        tools = (await inbox.response(2))["result"]["tools"]
        assert "echo" in {tool["name"] for tool in tools}
        await transport.send(
            call_tool(
                3, "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progressToken=7
            )
        )
        assert "result" in await inbox.response(3)
        assert len(inbox.with_method("notifications/progress")) == 3


@pytest.mark.peers
async def test_sse_transport_sampling_round_trip(everything_sse: ServerProcess) -> None:
    inbox = Inbox()
    async with sse_started(everything_sse.url, inbox) as transport:
        await transport.send(initialize_request("init", {"sampling": {}}))
        await inbox.response("init")
        await transport.send(INITIALIZED)
        await transport.send(call_tool("s", "trigger-sampling-request", {"prompt": "hi"}))
        asked = await inbox.wait_for(lambda m: m.get("method") == "sampling/createMessage")
        answer = {
            "role": "assistant",
            "content": {"type": "text", "text": "sampled-over-sse"},
            "model": "test-model",
        }
        await transport.send(jsonrpc.result_response(asked["id"], answer))
        assert "sampled-over-sse" in text_of(await inbox.response("s"))


@pytest.mark.peers
async def test_sse_server_restart_fails_pending_then_reconnects(
    own_everything_sse: ServerProcess,
) -> None:
    inbox = Inbox()
    async with sse_started(own_everything_sse.url, inbox) as transport:
        await transport.send(initialize_request("init"))
        await inbox.response("init")
        await transport.send(INITIALIZED)
        await transport.send(
            call_tool("slow", "trigger-long-running-operation", {"duration": 30, "steps": 30})
        )
        own_everything_sse.restart()  # the stream, and the server's session, are gone
        error = (await inbox.response("slow"))["error"]
        assert error["code"] == jsonrpc.REMOTE_UNAVAILABLE

        await transport.send(call_tool("again", "echo", {"message": "reconnected"}))
        assert "reconnected" in text_of(await inbox.response("again"))
        assert len([m for m in inbox.messages if m.get("id") == "init"]) == 1


async def test_auto_picks_sse_for_the_sdk_http_sse_server(sdk_http_sse: ServerProcess) -> None:
    inbox = Inbox()
    async with auto_connected(sdk_http_sse.url, inbox) as connection:
        assert connection.kind is TransportKind.SSE
        assert "result" in await inbox.response(0)
        transport = connection.transport
        assert isinstance(transport, LegacySseTransport)
        assert transport.endpoint is not None
        assert transport.endpoint.startswith(sdk_http_sse.url.replace("/sse", "/messages/"))
        await transport.send(INITIALIZED)
        await transport.send(call_tool(1, "count", {"steps": 2}, progressToken="p"))
        assert text_of(await inbox.response(1)) == "counted 2"
        assert len(inbox.with_method("notifications/progress")) == 2


async def test_streamable_only_refuses_a_closed_port() -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(RemoteError, match="could not be reached"):
        await connect(url, TransportKind.STREAMABLE_HTTP, Inbox().deliver)


async def test_sse_kind_against_a_streamable_server_says_what_it_tried(
    sdk_stateless: ServerProcess,
) -> None:
    url = sdk_stateless.url.replace("/mcp", "/nothing-here")
    with pytest.raises(RemoteError, match="HTTP 404"):
        await connect(url, TransportKind.SSE, Inbox().deliver)
