"""`mcp-bridge run` end to end: a stdio client, the bridge process, server-everything.

server-everything (npm, pinned in tests/peers) speaks 2025-11-25 with sessions, so these
tests cover the legacy Streamable HTTP relay and the HTTP+SSE relay, including the
server-to-client requests that must round-trip through the stdio client.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.bridge_process import Message, running_bridge
from tests.fixtures.mcp_servers import ServerProcess, text_of

pytestmark = pytest.mark.peers

ALL_CAPABILITIES: Message = {"sampling": {}, "elicitation": {"form": {}}, "roots": {}}


async def test_tools_list_and_call(everything_streamable: ServerProcess, bridge_home: Path) -> None:
    async with running_bridge(bridge_home, everything_streamable.url) as bridge:
        init = await bridge.initialize()
        assert init["result"]["serverInfo"]["name"] == "mcp-servers/everything"
        assert init["result"]["protocolVersion"] == "2025-11-25"
        tools = await bridge.request("tools/list")
        names = {tool["name"] for tool in tools["result"]["tools"]}
        # server-everything lists the trigger-* tools only to clients that declare the
        # capabilities they need; this client declared none.
        assert {"echo", "get-sum"} <= names
        assert "trigger-sampling-request" not in names
        echoed = await bridge.request(
            "tools/call", {"name": "echo", "arguments": {"message": "héllo ☃"}}
        )
        assert "héllo ☃" in text_of(echoed)
        assert await bridge.close_stdin_and_wait() == 0


async def test_sampling_request_round_trips_through_the_stdio_client(
    everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    async def sample(request: Message) -> Message:
        assert request["params"]["messages"]
        return {
            "role": "assistant",
            "content": {"type": "text", "text": "sampled by the stdio client"},
            "model": "test-model",
            "stopReason": "endTurn",
        }

    async with running_bridge(bridge_home, everything_streamable.url) as bridge:
        bridge.handlers["sampling/createMessage"] = sample
        bridge.handlers["roots/list"] = _no_roots
        await bridge.initialize(ALL_CAPABILITIES)
        result = await bridge.request(
            "tools/call",
            {"name": "trigger-sampling-request", "arguments": {"prompt": "hi", "maxTokens": 10}},
        )
        assert "sampled by the stdio client" in text_of(result)
        assert any(r["method"] == "sampling/createMessage" for r in bridge.requests_seen)


async def test_elicitation_request_round_trips_through_the_stdio_client(
    everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    async def elicit(request: Message) -> Message:
        schema = request["params"]["requestedSchema"]
        content = {
            name: _sample_value(spec)
            for name, spec in schema.get("properties", {}).items()
            if name in schema.get("required", [])
        }
        return {"action": "accept", "content": content}

    async with running_bridge(bridge_home, everything_streamable.url) as bridge:
        bridge.handlers["elicitation/create"] = elicit
        bridge.handlers["roots/list"] = _no_roots
        await bridge.initialize(ALL_CAPABILITIES)
        result = await bridge.request(
            "tools/call", {"name": "trigger-elicitation-request", "arguments": {}}
        )
        assert "error" not in result
        assert "accept" in text_of(result).lower()


async def test_progress_notifications_reach_the_client(
    everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, everything_streamable.url) as bridge:
        await bridge.initialize()
        result = await bridge.request(
            "tools/call",
            {
                "name": "trigger-long-running-operation",
                "arguments": {"duration": 1, "steps": 3},
                "_meta": {"progressToken": "tok-7"},
            },
        )
        assert "error" not in result
        progress = [
            note["params"]
            for note in bridge.notifications
            if note["method"] == "notifications/progress"
        ]
        assert [p["progressToken"] for p in progress] == ["tok-7"] * 3
        assert [p["progress"] for p in progress] == sorted(p["progress"] for p in progress)


async def test_resource_subscription_delivers_updates(
    everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, everything_streamable.url) as bridge:
        await bridge.initialize()
        resources = await bridge.request("resources/list")
        uri = resources["result"]["resources"][0]["uri"]
        subscribed = await bridge.request("resources/subscribe", {"uri": uri})
        assert "error" not in subscribed
        toggled = await bridge.request(
            "tools/call", {"name": "toggle-subscriber-updates", "arguments": {}}
        )
        assert "error" not in toggled
        update = await bridge.wait_for_notification(
            lambda n: n["method"] == "notifications/resources/updated"
        )
        assert update["params"]["uri"] == uri
        await bridge.request("tools/call", {"name": "toggle-subscriber-updates", "arguments": {}})


async def test_log_messages_reach_the_client(
    everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, everything_streamable.url) as bridge:
        await bridge.initialize()
        assert "error" not in await bridge.request("logging/setLevel", {"level": "debug"})
        await bridge.request("tools/call", {"name": "toggle-simulated-logging", "arguments": {}})
        note = await bridge.wait_for_notification(lambda n: n["method"] == "notifications/message")
        assert "level" in note["params"]
        await bridge.request("tools/call", {"name": "toggle-simulated-logging", "arguments": {}})


async def test_cancelled_request_stops_and_the_session_goes_on(
    everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, everything_streamable.url) as bridge:
        await bridge.initialize()
        long_id = bridge.new_id()
        waiter = bridge.expect_reply(long_id)
        await bridge.send(
            {
                "jsonrpc": "2.0",
                "id": long_id,
                "method": "tools/call",
                "params": {
                    "name": "trigger-long-running-operation",
                    "arguments": {"duration": 30, "steps": 30},
                    "_meta": {"progressToken": "long"},
                },
            }
        )
        await bridge.wait_for_notification(lambda n: n["params"].get("progressToken") == "long")
        await bridge.notify(
            "notifications/cancelled", {"requestId": long_id, "reason": "user pressed stop"}
        )
        echoed = await bridge.request("tools/call", {"name": "echo", "arguments": {"message": "x"}})
        assert "x" in text_of(echoed)
        assert not waiter.done() or "error" in waiter.result()


async def test_http_sse_transport_relays_requests_and_sampling(
    everything_sse: ServerProcess, bridge_home: Path
) -> None:
    async def sample(request: Message) -> Message:
        return {
            "role": "assistant",
            "content": {"type": "text", "text": "sampled over sse"},
            "model": "m",
        }

    async with running_bridge(bridge_home, everything_sse.url) as bridge:
        bridge.handlers["sampling/createMessage"] = sample
        bridge.handlers["roots/list"] = _no_roots
        init = await bridge.initialize(ALL_CAPABILITIES)
        assert init["result"]["serverInfo"]["name"] == "mcp-servers/everything"
        echoed = await bridge.request("tools/call", {"name": "echo", "arguments": {"message": "e"}})
        assert "e" in text_of(echoed)
        sampled = await bridge.request(
            "tools/call",
            {"name": "trigger-sampling-request", "arguments": {"prompt": "p", "maxTokens": 5}},
        )
        assert "sampled over sse" in text_of(sampled)
        assert await bridge.close_stdin_and_wait() == 0


async def test_forced_sse_transport(everything_sse: ServerProcess, bridge_home: Path) -> None:
    async with running_bridge(bridge_home, everything_sse.url, "--transport", "sse") as bridge:
        init = await bridge.initialize()
        assert "result" in init


async def test_server_restart_mid_session_is_transparent(
    own_everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, own_everything_streamable.url) as bridge:
        await bridge.initialize()
        assert "a" in text_of(
            await bridge.request("tools/call", {"name": "echo", "arguments": {"message": "a"}})
        )
        own_everything_streamable.restart()  # the new process knows no session: 404
        again = await bridge.request("tools/call", {"name": "echo", "arguments": {"message": "b"}})
        assert "b" in text_of(again)


async def test_server_killed_gives_errors_then_recovers(
    own_everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, own_everything_streamable.url) as bridge:
        await bridge.initialize()
        own_everything_streamable.stop()
        failed = await bridge.request("tools/call", {"name": "echo", "arguments": {"message": "x"}})
        assert own_everything_streamable.url in failed["error"]["message"]
        assert bridge.process.returncode is None
        own_everything_streamable.start()
        back = await bridge.request("tools/call", {"name": "echo", "arguments": {"message": "y"}})
        assert "y" in text_of(back)


async def _no_roots(request: Message) -> Message:
    return {"roots": []}


def _sample_value(spec: Message) -> object:
    kind = spec.get("type")
    if "enum" in spec:
        return spec["enum"][0]
    if kind in ("integer", "number"):
        return spec.get("minimum", 1)
    if kind == "boolean":
        return True
    return "value"
