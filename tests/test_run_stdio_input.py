"""Hostile and unusual stdin: a clear JSON-RPC error for each, and the bridge keeps serving.

Against the SDK's MCPServer (dual-era, so the bridge translates for it) in both of its
HTTP modes; nothing but JSON-RPC ever appears on stdout (BridgeProcess checks every line).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fixtures.bridge_process import echo, running_bridge
from tests.fixtures.mcp_servers import ServerProcess, text_of

PARSE_ERROR = -32700
INVALID_REQUEST = -32600


@pytest.mark.parametrize("server", ["sdk_stateful", "sdk_stateless"])
async def test_sdk_server_modes_relay_calls(
    server: str, request: pytest.FixtureRequest, bridge_home: Path
) -> None:
    remote: ServerProcess = request.getfixturevalue(server)
    async with running_bridge(bridge_home, remote.url) as bridge:
        init = await bridge.initialize()
        assert init["result"]["protocolVersion"] == "2025-11-25"
        tools = await bridge.request("tools/list")
        assert "echo" in {tool["name"] for tool in tools["result"]["tools"]}
        assert text_of(await echo(bridge, "over the bridge")) == "over the bridge"
        assert await bridge.close_stdin_and_wait() == 0


async def test_malformed_lines_get_errors_and_the_session_goes_on(
    sdk_stateless: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, sdk_stateless.url) as bridge:
        await bridge.initialize()

        await bridge.write_line(b"{this is not json")
        error = await bridge.next_error()
        assert error == {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": PARSE_ERROR, "message": error["error"]["message"]},
        }

        await bridge.write_line(b'{"jsonrpc":"2.0","id":"k","result":1,"method":7}')
        assert (await bridge.next_error())["error"]["code"] == INVALID_REQUEST

        await bridge.write_line(b'{"jsonrpc":"1.0","id":"old","method":"tools/list"}')
        wrong_version = await bridge.next_error()
        assert wrong_version["id"] == "old"
        assert wrong_version["error"]["code"] == INVALID_REQUEST

        await bridge.write_line(b'\xff\xfe{"jsonrpc":"2.0"}')
        assert (await bridge.next_error())["error"]["code"] == PARSE_ERROR

        await bridge.write_line(b"42")
        assert (await bridge.next_error())["error"]["code"] == INVALID_REQUEST

        await bridge.write_line(b"")
        await bridge.write_line(b"   ")
        assert text_of(await echo(bridge, "still here")) == "still here"


async def test_oversized_line_is_refused_and_the_next_one_served(
    sdk_stateless: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(
        bridge_home, sdk_stateless.url, "--max-message-bytes", "4096"
    ) as bridge:
        await bridge.initialize()
        await bridge.write_line(b'{"jsonrpc":"2.0","id":1,"method":"x","params":"' + b"a" * 9000)
        error = await bridge.next_error()
        assert "--max-message-bytes" in error["error"]["message"]
        assert text_of(await echo(bridge, "after")) == "after"


async def test_batch_from_an_old_client_is_answered_with_one_array(
    sdk_stateless: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, sdk_stateless.url) as bridge:
        await bridge.initialize()
        await bridge.send(
            [
                {"jsonrpc": "2.0", "id": "b1", "method": "ping"},
                {"jsonrpc": "2.0", "id": "b2", "method": "tools/list"},
                {"jsonrpc": "2.0", "method": "notifications/roots/list_changed"},
                "not an object",
            ]
        )
        batch = await bridge.next_unmatched()
        assert isinstance(batch, list)
        by_id = {member["id"]: member for member in batch}
        assert set(by_id) == {"b1", "b2", None}
        assert by_id["b1"]["result"] == {}
        assert "tools" in by_id["b2"]["result"]
        assert by_id[None]["error"]["code"] == INVALID_REQUEST


async def test_string_and_integer_ids_keep_their_type(
    sdk_stateless: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, sdk_stateless.url) as bridge:
        await bridge.initialize()
        as_string = await bridge.request("tools/list", request_id="17")
        as_int = await bridge.request("tools/list", request_id=18)
        assert as_string["id"] == "17"
        assert as_int["id"] == 18


async def test_unreachable_remote_answers_every_request_with_an_error(bridge_home: Path) -> None:
    url = "http://127.0.0.1:9/mcp"  # the discard port: nothing listens there
    async with running_bridge(bridge_home, url) as bridge:
        failed = await bridge.initialize()
        assert url in failed["error"]["message"]
        pong = await bridge.request("ping")
        assert pong["result"] == {}
        again = await bridge.request("tools/list")
        assert "error" in again
        assert bridge.process.returncode is None
        assert await bridge.close_stdin_and_wait() == 0


async def test_sigterm_exits_cleanly(sdk_stateful: ServerProcess, bridge_home: Path) -> None:
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        await bridge.initialize()
        assert text_of(await echo(bridge, "x")) == "x"
        assert await bridge.terminate_and_wait() == 0


async def test_stderr_stays_quiet_on_a_healthy_session(
    sdk_stateful: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        await bridge.initialize()
        assert text_of(await echo(bridge, "quiet")) == "quiet"
        assert await bridge.close_stdin_and_wait() == 0
        assert bridge.process.stderr is not None
        stderr = await asyncio.wait_for(bridge.process.stderr.read(), 5)
        assert stderr == b""
        assert list((bridge_home / "logs").glob("*.log"))
