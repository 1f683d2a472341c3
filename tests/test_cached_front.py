"""The cache of first answers and the front that answers from it, without sockets."""

from __future__ import annotations

import json
from pathlib import Path

from mcp_bridge.engine.answer_cache import AnswerCache, answer_key, cache_file
from mcp_bridge.engine.cached_front import CachedFront
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.protocol import META_PROTOCOL_VERSION

INIT_RESULT: JsonObject = {"protocolVersion": "2025-11-25", "capabilities": {"tools": {}}}
TOOLS_RESULT: JsonObject = {"tools": [{"name": "echo", "inputSchema": {"type": "object"}}]}


def request(request_id: int | str, method: str, **params: object) -> JsonObject:
    return {"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}


def initialize(request_id: int | str = 0, version: str = "2025-11-25") -> JsonObject:
    return request(request_id, "initialize", protocolVersion=version, capabilities={})


INITIALIZED: JsonObject = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def front_with(answers: dict[str, JsonObject]) -> CachedFront:
    return CachedFront(answers.get)


def test_the_handshake_and_tool_list_are_answered_and_held_until_a_real_request() -> None:
    front = front_with(
        {"initialize@2025-11-25": INIT_RESULT, "tools/list@2025-11-25": TOOLS_RESULT}
    )
    step = front.from_local(initialize())
    assert step.to_local == ({"jsonrpc": "2.0", "id": 0, "result": INIT_RESULT},)
    assert step.to_remote == ()
    assert front.from_local(INITIALIZED).to_remote == ()
    assert front.from_local(request(1, "tools/list")).to_local[0]["result"] == TOOLS_RESULT
    call = request(2, "tools/call", name="echo", arguments={})
    released = front.from_local(call)
    assert released.to_local == ()
    assert [m.get("method") for m in released.to_remote] == [
        "initialize",
        "notifications/initialized",
        "tools/list",
        "tools/call",
    ]
    assert front.is_transparent
    # The remote's own answers to what the client already has are dropped, once.
    assert front.is_dropped({"jsonrpc": "2.0", "id": 0, "result": {}})
    assert front.is_dropped({"jsonrpc": "2.0", "id": 1, "result": {}})
    assert not front.is_dropped({"jsonrpc": "2.0", "id": 2, "result": {}})
    assert not front.is_dropped({"jsonrpc": "2.0", "id": 0, "result": {}})


def test_without_a_cached_answer_everything_passes_at_once() -> None:
    front = front_with({})
    assert front.from_local(initialize()).to_remote == (initialize(),)
    assert front.is_transparent
    assert front.from_local(INITIALIZED).to_remote == (INITIALIZED,)


def test_another_version_is_not_answered_from_an_answer_for_this_one() -> None:
    front = front_with({"initialize@2025-11-25": INIT_RESULT})
    assert front.from_local(initialize(version="2025-06-18")).to_local == ()


def test_ping_is_answered_and_not_held() -> None:
    front = front_with({})
    step = front.from_local(request("p", "ping"))
    assert step.to_local == ({"jsonrpc": "2.0", "id": "p", "result": {}},)
    assert not front.held
    assert not front.is_transparent


def test_a_question_asked_twice_goes_to_the_remote_the_second_time() -> None:
    """After notifications/tools/list_changed a client asks again: it wants the fresh list."""
    front = front_with(
        {"initialize@2025-11-25": INIT_RESULT, "tools/list@2025-11-25": TOOLS_RESULT}
    )
    front.from_local(initialize())
    assert front.from_local(request(1, "tools/list")).to_local
    second = front.from_local(request(2, "tools/list"))
    assert second.to_local == ()
    assert second.to_remote[-1]["id"] == 2


def test_a_modern_clients_discover_and_tool_list_are_answered() -> None:
    meta = {META_PROTOCOL_VERSION: "2026-07-28"}
    discover: JsonObject = {"supportedVersions": ["2026-07-28"], "capabilities": {}}
    front = front_with({"server/discover@": discover, "tools/list@2026-07-28": TOOLS_RESULT})
    assert front.from_local(request("d", "server/discover", _meta=meta)).to_local[0]["result"]
    assert front.from_local(request(1, "tools/list", _meta=meta)).to_local[0]["result"]
    assert front.held_opening() is not None


def test_answer_keys() -> None:
    assert answer_key(initialize(version="2025-06-18"), None) == "initialize@2025-06-18"
    assert answer_key(request(1, "tools/list"), "2025-11-25") == "tools/list@2025-11-25"
    assert answer_key(request(1, "tools/list", cursor="c2"), "2025-11-25") is None
    assert answer_key(request(1, "tools/call", name="x"), "2025-11-25") is None
    assert answer_key(request(1, "tools/list"), None) is None  # no version known
    assert answer_key(request(1, "server/discover"), None) == "server/discover@"


def test_the_cache_file_round_trips_and_is_private(tmp_path: Path) -> None:
    cache = AnswerCache.load(tmp_path, "https://mcp.example/mcp")
    assert cache.put("tools/list@2025-11-25", TOOLS_RESULT)
    assert not cache.put("tools/list@2025-11-25", TOOLS_RESULT)  # unchanged: not rewritten
    again = AnswerCache.load(tmp_path, "https://mcp.example/mcp")
    assert again.get("tools/list@2025-11-25") == TOOLS_RESULT
    assert cache.path.stat().st_mode & 0o777 == 0o600


def test_a_damaged_or_foreign_cache_file_reads_as_empty(tmp_path: Path) -> None:
    path = cache_file(tmp_path, "https://mcp.example/mcp")
    for content in (
        b"{not json",
        b"[]",
        b'{"format":1,"resource":"https://other.example/mcp","answers":{"k":{}}}',
        b'{"format":99,"resource":"https://mcp.example/mcp","answers":{"k":{}}}',
        b"[" * 100_000,
    ):
        path.write_bytes(content)
        assert AnswerCache.load(tmp_path, "https://mcp.example/mcp").get("k") is None
    path.write_text(
        json.dumps({"format": 1, "resource": "https://mcp.example/mcp", "answers": {"k": {}}})
    )
    assert AnswerCache.load(tmp_path, "https://mcp.example/mcp").get("k") == {}


def test_a_transparent_front_still_learns_the_handshake_version() -> None:
    """The engine's recheck session passes everything on and records the answers: it
    needs the version to key a legacy client's tools/list."""
    front = CachedFront(front_with({}).lookup, is_transparent=True)
    front.from_local(initialize(version="2025-06-18"))
    assert front.handshake_version == "2025-06-18"
