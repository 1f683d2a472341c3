"""Legacy-era Streamable HTTP (2025-03-26 .. 2025-11-25) against real servers:
server-everything (TypeScript SDK) and the Python SDK's MCPServer."""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp
import pytest

from mcp_bridge import jsonrpc
from mcp_bridge.protocol import Era
from mcp_bridge.remote.streamable import StreamableHttpTransport
from tests.fixtures.mcp_servers import (
    INITIALIZED,
    Inbox,
    ServerProcess,
    call_tool,
    initialize_request,
    text_of,
)


class OpenLegacy(Protocol):
    async def __call__(
        self, server: ServerProcess, capabilities: dict[str, Any] | None = None
    ) -> StreamableHttpTransport: ...


@pytest.fixture
async def open_legacy(inbox: Inbox) -> AsyncIterator[OpenLegacy]:
    """Opens a started transport that has done the handshake, as a legacy client would,
    delivering to `inbox`; every one is closed at the end, even when the test fails."""
    opened: list[StreamableHttpTransport] = []

    async def open_one(
        server: ServerProcess, capabilities: dict[str, Any] | None = None
    ) -> StreamableHttpTransport:
        transport = StreamableHttpTransport(server.url, Era.LEGACY)
        opened.append(transport)
        await transport.start(inbox.deliver)
        await transport.send(initialize_request("init", capabilities))
        reply = await inbox.response("init")
        assert "result" in reply, reply
        await transport.send(INITIALIZED)
        return transport

    yield open_one
    for transport in opened:
        await transport.aclose()


@pytest.mark.peers
async def test_everything_handshake_list_and_call(
    everything_streamable: ServerProcess, inbox: Inbox, open_legacy: OpenLegacy
) -> None:
    transport = await open_legacy(everything_streamable)
    assert transport.session.session_id is not None
    # The version comes from the initialize RESULT and goes on every later request.
    assert transport.session.protocol_version == "2025-11-25"

    await transport.send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
    tools = (await inbox.response(2))["result"]["tools"]
    assert "echo" in {tool["name"] for tool in tools}

    await transport.send(call_tool(3, "echo", {"message": "héllo"}))
    assert "héllo" in text_of(await inbox.response(3))


@pytest.mark.peers
async def test_everything_progress_streams_before_the_result(
    everything_streamable: ServerProcess, inbox: Inbox, open_legacy: OpenLegacy
) -> None:
    transport = await open_legacy(everything_streamable)
    request = call_tool(
        "long", "trigger-long-running-operation", {"duration": 0.3, "steps": 3}, progressToken="p"
    )
    await transport.send(request)
    reply = await inbox.response("long")
    assert "result" in reply
    progress = [m for m in inbox.with_method("notifications/progress")]
    assert [m["params"]["progress"] for m in progress] == [1, 2, 3]
    # Delivered in order: every progress notification before the response.
    assert inbox.messages.index(progress[-1]) < inbox.messages.index(reply)


SAMPLING_ANSWER = {
    "role": "assistant",
    "content": {"type": "text", "text": "answered-by-test"},
    "model": "test-model",
    "stopReason": "endTurn",
}
ELICITATION_ANSWER = {"action": "accept", "content": {"name": "answered-by-test"}}


@pytest.mark.peers
@pytest.mark.parametrize(
    ("capability", "tool", "server_method", "answer"),
    [
        ("sampling", "trigger-sampling-request", "sampling/createMessage", SAMPLING_ANSWER),
        ("elicitation", "trigger-elicitation-request", "elicitation/create", ELICITATION_ANSWER),
    ],
)
async def test_everything_server_to_client_request_round_trips(
    everything_streamable: ServerProcess,
    inbox: Inbox,
    open_legacy: OpenLegacy,
    capability: str,
    tool: str,
    server_method: str,
    answer: dict[str, Any],
) -> None:
    transport = await open_legacy(everything_streamable, {capability: {}})
    await transport.send(call_tool("t", tool, {"prompt": "hi"}))
    server_request = await inbox.wait_for(lambda m: m.get("method") == server_method)
    # We play the client: answer the server's request; the transport POSTs it back, and the
    # tool's result (which quotes our answer) can only come after the server got it.
    await transport.send(jsonrpc.result_response(server_request["id"], answer))
    result = (await inbox.response("t"))["result"]
    assert "answered-by-test" in json.dumps(result["content"])


@pytest.mark.peers
async def test_everything_get_stream_carries_server_initiated_messages(
    everything_streamable: ServerProcess, inbox: Inbox, open_legacy: OpenLegacy
) -> None:
    transport = await open_legacy(everything_streamable)
    # Simulated logging is tied to no request: the server sends it on the GET stream the
    # transport opened after notifications/initialized, one now and one every 5 s. The second
    # comes long after the tool call's own stream closed, so only the GET stream can carry it.
    await transport.send(call_tool("on", "toggle-simulated-logging", {}))
    await inbox.response("on")
    try:
        await inbox.wait_for_count("notifications/message", 2)
    finally:
        await transport.send(call_tool("off", "toggle-simulated-logging", {}))
        await inbox.response("off")


@pytest.mark.peers
async def test_everything_restart_replays_the_handshake(
    own_everything_streamable: ServerProcess, inbox: Inbox, open_legacy: OpenLegacy
) -> None:
    transport = await open_legacy(own_everything_streamable)
    old_session = transport.session.session_id
    own_everything_streamable.restart()

    await transport.send(call_tool("after", "echo", {"message": "still here"}))
    assert "still here" in text_of(await inbox.response("after"))
    assert transport.session.session_id not in (None, old_session)
    # The replayed initialize was answered to the transport alone.
    assert [m for m in inbox.messages if m.get("id") == "init"] == [inbox.messages[0]]


async def test_sdk_restart_replays_the_handshake(
    own_sdk_stateful: ServerProcess, inbox: Inbox, open_legacy: OpenLegacy
) -> None:
    transport = await open_legacy(own_sdk_stateful)
    await transport.send(call_tool(1, "echo", {"text": "before"}))
    assert text_of(await inbox.response(1)) == "before"
    old_session = transport.session.session_id
    own_sdk_stateful.restart()  # the new process knows no session: it answers 404

    await transport.send(call_tool(2, "echo", {"text": "after"}))
    assert text_of(await inbox.response(2)) == "after"
    assert transport.session.session_id not in (None, old_session)
    assert len([m for m in inbox.messages if m.get("id") == "init"]) == 1


async def test_killed_server_gives_errors_then_works_after_restart(
    own_sdk_stateful: ServerProcess, inbox: Inbox, open_legacy: OpenLegacy
) -> None:
    transport = await open_legacy(own_sdk_stateful)
    own_sdk_stateful.stop()

    for request_id in ("down-1", "down-2"):
        await transport.send(call_tool(request_id, "echo", {"text": "x"}))
        error = (await inbox.response(request_id))["error"]
        assert error["code"] == jsonrpc.REMOTE_UNAVAILABLE
        assert own_sdk_stateful.url in error["message"]

    own_sdk_stateful.start()
    await transport.send(call_tool("up", "echo", {"text": "back"}))
    assert text_of(await inbox.response("up")) == "back"


async def test_close_deletes_the_session(
    sdk_stateful: ServerProcess, open_legacy: OpenLegacy
) -> None:
    transport = await open_legacy(sdk_stateful)
    session_id = transport.session.session_id
    assert session_id is not None
    await transport.aclose()

    headers = {
        "Mcp-Session-Id": session_id,
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    body = jsonrpc.encode({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    async with (
        aiohttp.ClientSession() as http,
        http.post(sdk_stateful.url, data=body, headers=headers) as response,
    ):
        assert response.status == 404  # the server forgot the session: DELETE reached it


async def test_sixteen_calls_run_concurrently(
    sdk_stateful: ServerProcess, inbox: Inbox, open_legacy: OpenLegacy
) -> None:
    transport = await open_legacy(sdk_stateful)
    # `gather` answers only when all 16 calls are inside the tool at once: a transport that
    # serialized them (a lock across a request) would never see a single answer.
    for n in range(16):
        await transport.send(call_tool(f"g{n}", "gather", {"n": 16}))
    replies = await asyncio.gather(*(inbox.response(f"g{n}") for n in range(16)))
    assert {text_of(reply) for reply in replies} == {"gathered"}


@pytest.mark.parametrize("server_name", ["sdk_stateful", "sdk_stateless"])
async def test_twenty_megabyte_result_passes_in_memory_proportional_to_it(
    server_name: str,
    request: pytest.FixtureRequest,
    inbox: Inbox,
    open_legacy: OpenLegacy,
) -> None:
    server: ServerProcess = request.getfixturevalue(server_name)
    transport = await open_legacy(server)
    size = 20_000_000
    tracemalloc.start()
    try:
        await transport.send(call_tool("big", "big", {"size": size}))
        reply = await inbox.response("big", timeout_s=120)
        _, peak_bytes = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(text_of(reply)) == size
    # No cap, and no pile of copies: the body on the wire, the text it decodes to and the
    # parsed result (the last is what the bridge gets) at most: ~2x measured, 3x allowed.
    wire_bytes = len(jsonrpc.encode(reply))
    assert peak_bytes < 3 * wire_bytes


async def test_stateless_json_server_has_no_session(
    sdk_stateless: ServerProcess, inbox: Inbox, open_legacy: OpenLegacy
) -> None:
    transport = await open_legacy(sdk_stateless)
    assert transport.session.session_id is None
    await transport.send(call_tool(1, "echo", {"text": "json"}))
    assert text_of(await inbox.response(1)) == "json"
