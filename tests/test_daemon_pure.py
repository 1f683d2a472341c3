"""The daemon hello and the shim's flight book, without sockets."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge import jsonrpc
from mcp_bridge.daemon import hello
from mcp_bridge.shim.flights import REPLAY_ID_PREFIX, Flights


def line(message: object) -> bytes:
    return json.dumps(message).encode()


# -- hello ------------------------------------------------------------------------------


def test_a_session_hello_round_trips_its_profile() -> None:
    profile: dict[str, object] = {"url": "https://mcp.example/mcp", "headers": {"X": "secret"}}
    parsed = hello.parse_hello(hello.encode({"session": profile}))
    assert isinstance(parsed, hello.SessionHello)
    assert parsed.profile == profile
    assert "secret" not in repr(parsed)


@pytest.mark.parametrize("command", ["status", "stop"])
def test_a_command_hello_names_its_command(command: str) -> None:
    assert hello.parse_hello(hello.encode({"command": command})) == hello.CommandHello(command)


def test_a_join_login_hello_names_its_server() -> None:
    sent = hello.encode({"command": "join-login", "url": "https://mcp.example/mcp"})
    assert hello.parse_hello(sent) == hello.JoinLoginHello("https://mcp.example/mcp")


@pytest.mark.parametrize(
    ("first_line", "complaint"),
    [
        (b"", "not JSON"),
        (b"GET / HTTP/1.1", "not JSON"),
        (b'{"jsonrpc":"2.0","id":1,"method":"initialize"}', "not an mcp-bridge hello"),
        (b"[1]", "not an mcp-bridge hello"),
        (b'{"mcp-bridge":1,"session":{}}', "speaks daemon protocol 1; this side speaks 2"),
        (b'{"mcp-bridge":2,"session":"x"}', "no server profile"),
        (b'{"mcp-bridge":2,"command":"format-disk"}', "Unknown daemon request"),
        (b'{"mcp-bridge":2,"command":"join-login"}', "names no server URL"),
        (b'{"mcp-bridge":2,"command":"join-login","url":7}', "names no server URL"),
        (b"[" * 100_000, "not JSON"),
    ],
)
def test_a_bad_first_line_gets_a_reason(first_line: bytes, complaint: str) -> None:
    with pytest.raises(hello.HelloError, match=complaint):
        hello.parse_hello(first_line)


def test_a_version_mismatch_names_the_way_out() -> None:
    with pytest.raises(hello.HelloError) as caught:
        hello.parse_reply(b'{"mcp-bridge":7,"ok":true}')
    assert "mcp-bridge daemon stop" in caught.value.next_step


def test_a_refusal_carries_the_daemons_words() -> None:
    with pytest.raises(hello.HelloError, match=r"bad URL\. Fix it"):
        hello.parse_reply(hello.error_reply("bad URL", "Fix it"))
    assert hello.parse_reply(hello.ok_reply(pid=7))["pid"] == 7


# -- flights ----------------------------------------------------------------------------

INITIALIZE = {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {"capabilities": {}}}
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}


def test_requests_in_flight_get_an_error_when_the_daemon_is_lost() -> None:
    flights = Flights()
    flights.from_client(line({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}))
    flights.from_client(line({"jsonrpc": "2.0", "id": "b", "method": "tools/list"}))
    flights.from_client(line({"jsonrpc": "2.0", "method": "notifications/cancelled"}))
    flights.from_client(line({"jsonrpc": "2.0", "id": 9, "result": {}}))  # a reply of ours
    assert flights.from_daemon(line({"jsonrpc": "2.0", "id": 1, "result": {}}))
    errors = [json.loads(error) for error in flights.lost("gone")]
    assert [(e["id"], e["error"]["message"]) for e in errors] == [("b", "gone")]
    assert flights.lost("again") == []


def test_the_handshake_is_replayed_under_an_id_whose_answer_is_dropped() -> None:
    flights = Flights()
    assert flights.replay() == []  # nothing to replay before the client's initialize
    flights.from_client(line(INITIALIZE))
    flights.from_client(line(INITIALIZED))
    flights.from_daemon(line({"jsonrpc": "2.0", "id": 0, "result": {}}))
    replayed = [json.loads(sent) for sent in flights.replay()]
    assert replayed[0]["id"] == f"{REPLAY_ID_PREFIX}1"
    assert replayed[0]["params"] == INITIALIZE["params"]
    assert replayed[1] == INITIALIZED
    answer = {"jsonrpc": "2.0", "id": f"{REPLAY_ID_PREFIX}1", "result": {}}
    assert not flights.from_daemon(line(answer))  # the client already has its answer
    assert flights.from_daemon(line(answer))  # an id seen once is not dropped twice


def test_a_handshake_sent_with_its_newline_is_replayed_as_bare_lines() -> None:
    flights = Flights()
    flights.from_client(line(INITIALIZE) + b"\n")
    flights.from_client(line(INITIALIZED) + b"\r\n")
    replayed = flights.replay()
    assert not any(sent.endswith((b"\n", b"\r")) for sent in replayed)
    assert json.loads(replayed[1]) == INITIALIZED


def test_a_large_replys_id_is_read_from_its_first_bytes() -> None:
    flights = Flights()
    flights.from_client(line({"jsonrpc": "2.0", "id": "big", "method": "resources/read"}))
    huge = {"jsonrpc": "2.0", "id": "big", "result": {"text": "x" * 2_000_000}}
    assert flights.from_daemon(line(huge).replace(b": ", b":").replace(b", ", b","))
    assert flights.lost("gone") == []


def test_server_requests_and_garbage_from_the_daemon_pass_through() -> None:
    flights = Flights()
    flights.from_client(line({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}))
    assert flights.from_daemon(line({"jsonrpc": "2.0", "id": 1, "method": "roots/list"}))
    assert flights.from_daemon(b"not json")
    assert flights.in_flight == 1


def test_a_large_server_request_is_no_reply_to_the_client_request_of_its_id() -> None:
    """Ids are per side: the server's request 1 (a sampling request with a large prompt,
    read by its first bytes) leaves the client's request 1 in flight."""
    flights = Flights()
    flights.from_client(jsonrpc.encode({"jsonrpc": "2.0", "id": 1, "method": "tools/call"}))
    prompt = {"messages": [{"role": "user", "content": {"type": "text", "text": "x" * 2**21}}]}
    request = {"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage", "params": prompt}
    assert flights.from_daemon(jsonrpc.encode(request))
    assert [json.loads(error)["id"] for error in flights.lost("gone")] == [1]


@given(
    request_id=st.one_of(st.integers(), st.text(max_size=20)),
    result=st.dictionaries(st.text(max_size=5), st.text(max_size=30), max_size=3),
    size=st.sampled_from([0, 2**21]),
)
def test_a_reply_read_by_its_first_bytes_settles_the_request_of_its_id(
    request_id: int | str, result: dict[str, str], size: int
) -> None:
    """What the daemon writes (jsonrpc.encode of `jsonrpc`, then `id`, then `result`),
    small or past the size the shim parses whole."""
    flights = Flights()
    flights.from_client(jsonrpc.encode({"jsonrpc": "2.0", "id": request_id, "method": "x"}))
    reply = {"jsonrpc": "2.0", "id": request_id, "result": {**result, "pad": "x" * size}}
    assert flights.from_daemon(jsonrpc.encode(reply))
    assert flights.in_flight == 0


@pytest.mark.parametrize("version", [0, 1, 2, 99, "future"])
def test_stop_is_understood_from_any_version(version: object) -> None:
    """How a newer shim retires a daemon an older mcp-bridge left running."""
    line = json.dumps({"mcp-bridge": version, "command": "stop"}).encode()
    assert hello.parse_hello(line) == hello.CommandHello("stop")
