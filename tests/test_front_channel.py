"""FrontChannel with an in-memory client: what it answers, rewrites and tells the client."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_bridge import jsonrpc
from mcp_bridge.bridge.large_line import LargeLine, encode_line
from mcp_bridge.engine.answer_book import AnswerBook
from mcp_bridge.engine.cached_front import CachedFront
from mcp_bridge.engine.front_channel import FrontChannel
from mcp_bridge.jsonrpc import JsonObject
from tests.fixtures.memory_client import MemoryClient, passed_on

RESOURCE = "https://mcp.example/mcp"


def initialize(capabilities: JsonObject | None = None) -> JsonObject:
    params = {"protocolVersion": "2025-11-25", "capabilities": capabilities or {}}
    return {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": params}


async def channel_with_cached_init(
    tmp_path: Path, server_capabilities: JsonObject, client: MemoryClient
) -> FrontChannel:
    book = AnswerBook(tmp_path, RESOURCE)
    result = {"protocolVersion": "2025-11-25", "capabilities": server_capabilities}
    book.record("initialize@2025-11-25", result)
    channel = FrontChannel(client, CachedFront(book.get), book, on_cache_answer=lambda m: None)
    assert await channel.receive() is None  # the initialize was answered from the cache
    assert client.received[0]["result"] == result
    return channel


@pytest.mark.parametrize(("capabilities", "told"), [({"logging": {}}, True), ({}, False)])
async def test_a_lost_login_is_told_where_the_server_declared_logging(
    tmp_path: Path, capabilities: JsonObject, told: bool
) -> None:
    client = MemoryClient(initialize())
    channel = await channel_with_cached_init(tmp_path, capabilities, client)
    channel.login_lost(RESOURCE, "the refresh token was revoked")
    notes = [m for m in client.received if m.get("method") == "notifications/message"]
    assert bool(notes) is told
    if told:
        assert notes[0]["params"]["level"] == "warning"
        assert f"mcp-bridge login {RESOURCE}" in notes[0]["params"]["data"]


async def test_a_sign_in_error_becomes_url_elicitation_for_a_client_that_declared_it(
    tmp_path: Path,
) -> None:
    client = MemoryClient(initialize({"elicitation": {"url": {}}}))
    channel = await channel_with_cached_init(tmp_path, {}, client)
    error = jsonrpc.error_response(5, -32000, "Open it", {"signInUrl": "https://as/authorize"})
    channel.send(jsonrpc.encode(error))
    sent = client.received[-1]
    assert sent["error"]["code"] == -32042
    assert sent["error"]["data"]["elicitations"][0]["url"] == "https://as/authorize"


async def test_a_large_reply_to_a_request_answered_from_the_cache_is_dropped_unparsed(
    tmp_path: Path,
) -> None:
    client = MemoryClient(initialize())
    channel = await channel_with_cached_init(tmp_path, {}, client)
    big = {"protocolVersion": "2025-11-25", "capabilities": {}, "pad": "x" * (2 << 20)}
    duplicate = encode_line(jsonrpc.result_response(0, big))  # the remote's answer
    assert isinstance(duplicate, LargeLine)
    channel.send(duplicate)
    other = encode_line(jsonrpc.result_response(9, big))
    channel.send(other)
    assert [m["id"] for m in client.received] == [0, 9]  # 0 from the cache, then 9 only


@pytest.mark.parametrize("transparent", [False, True], ids=["holding", "transparent"])
async def test_a_method_that_is_not_a_string_is_left_for_the_session_to_refuse(
    tmp_path: Path, transparent: bool
) -> None:
    """Lines are parsed before anything checks them: a list where the method should be
    (naming a cached method, so that the front looks) must not end the client's session."""
    odd = {"jsonrpc": "2.0", "id": 1, "method": ["tools/list"]}
    client = MemoryClient(odd)
    book = AnswerBook(tmp_path, RESOURCE)
    front = CachedFront(book.get, is_transparent=transparent)
    channel = FrontChannel(client, front, book, on_cache_answer=lambda m: None)
    assert await passed_on(channel) == odd
