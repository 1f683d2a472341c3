"""The daemon's lines passed on to the client as they arrive (shim/daemon_lines.py),
without sockets: whatever the chunks, the client gets what the flight book would let
through line by line, and a large line is never held whole."""

from __future__ import annotations

import itertools
import json

from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_bridge import jsonrpc
from mcp_bridge.shim.daemon_lines import DaemonLines
from mcp_bridge.shim.flights import PARSE_LIMIT_BYTES, Flights

IDS = st.one_of(st.integers(0, 5), st.sampled_from(["a", "b", 'q"uote']))
PAD = st.sampled_from([0, 30, 700, PARSE_LIMIT_BYTES + 10])


@st.composite
def daemon_lines(draw: st.DrawFn) -> bytes:
    """One line as a daemon might send it: a reply id-leading or in another member order,
    a server's request or notification, a batch, or garbage."""
    request_id, pad = draw(IDS), "x" * draw(PAD)
    shape = draw(st.sampled_from(["leading", "result first", "request", "note", "batch", "junk"]))
    if shape == "leading":
        return jsonrpc.encode({"jsonrpc": "2.0", "id": request_id, "result": {"t": pad}})
    if shape == "result first":
        return jsonrpc.encode({"result": {"t": pad}, "jsonrpc": "2.0", "id": request_id})
    if shape == "request":
        return jsonrpc.encode({"jsonrpc": "2.0", "id": request_id, "method": "m", "params": pad})
    if shape == "note":
        return jsonrpc.encode({"jsonrpc": "2.0", "method": "n", "params": {"t": pad}})
    if shape == "batch":
        return jsonrpc.encode([{"jsonrpc": "2.0", "id": request_id, "result": {}}])
    return b'{"id": ' + pad.encode() + b" not json"


def book(in_flight: list[int | str], answered_here: list[int | str]) -> Flights:
    flights = Flights()
    for request_id in in_flight:
        flights.from_client(jsonrpc.encode({"jsonrpc": "2.0", "id": request_id, "method": "x"}))
    for request_id in answered_here:
        flights.answered_here(request_id)
    return flights


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=150)
@given(
    lines=st.lists(daemon_lines(), max_size=6),
    in_flight=st.lists(IDS, max_size=4),
    answered_here=st.lists(IDS, max_size=2),
    cuts=st.lists(st.integers(0, 2 * PARSE_LIMIT_BYTES), max_size=8),
)
def test_any_chunks_give_the_client_what_the_book_lets_through_line_by_line(
    lines: list[bytes],
    in_flight: list[int | str],
    answered_here: list[int | str],
    cuts: list[int],
) -> None:
    expected_book = book(in_flight, answered_here)
    expected = b"".join(line + b"\n" for line in lines if expected_book.from_daemon(line))
    flights = book(in_flight, answered_here)
    stream = DaemonLines(flights)
    out = [
        piece
        for chunk in chunked(b"".join(line + b"\n" for line in lines), cuts)
        for piece in stream.feed(chunk)
    ]
    assert b"".join(out) == expected
    assert not stream.mid_line
    assert flights.in_flight == expected_book.in_flight
    assert [json.loads(e)["id"] for e in flights.lost("x")] == [
        json.loads(e)["id"] for e in expected_book.lost("x")
    ]


@settings(max_examples=150)
@given(
    lines=st.lists(daemon_lines(), min_size=1, max_size=5),
    in_flight=st.lists(IDS, max_size=4),
    cut_at=st.integers(0, 2 * PARSE_LIMIT_BYTES),
    cuts=st.lists(st.integers(0, 2 * PARSE_LIMIT_BYTES), max_size=4),
)
def test_only_a_whole_reply_settles_its_request_when_the_daemon_goes_away(
    lines: list[bytes], in_flight: list[int | str], cut_at: int, cuts: list[int]
) -> None:
    """The daemon dies `cut_at` bytes in: the requests whose replies did not all arrive
    get their error, the others none, and a half-written line is ended first."""
    data = b"".join(line + b"\n" for line in lines)
    data = data[: cut_at % (len(data) + 1)]
    expected_book = book(in_flight, [])
    for whole in data.split(b"\n")[:-1]:
        expected_book.from_daemon(whole)
    flights = book(in_flight, [])
    stream = DaemonLines(flights)
    out = [piece for chunk in chunked(data, cuts) for piece in stream.feed(chunk)]
    out += stream.cut()
    assert b"".join(out).endswith(b"\n") or not out
    assert [json.loads(e)["id"] for e in flights.lost("x")] == [
        json.loads(e)["id"] for e in expected_book.lost("x")
    ]


def test_a_large_reply_goes_out_as_it_arrives_and_only_its_start_is_held() -> None:
    flights = book([7], [])
    stream = DaemonLines(flights)
    first = b'{"jsonrpc":"2.0","id":7,"result":{"text":"' + b"x" * 1000
    assert stream.feed(first) == [first]  # decided by its first bytes, passed on at once
    assert stream.mid_line
    middle = b"x" * 65536
    assert stream.feed(middle) == [middle]
    assert flights.in_flight == 1  # settled at the reply's end, not its start
    assert stream.feed(b'"}}\n{"jsonrpc":"2.0","method":"n"}\n') == [
        b'"}}\n',
        b'{"jsonrpc":"2.0","method":"n"}\n',
    ]
    assert not stream.mid_line
    assert flights.in_flight == 0


def test_the_answer_to_a_request_answered_here_is_dropped_however_large() -> None:
    flights = book([], ["cached"])
    stream = DaemonLines(flights)
    assert stream.feed(b'{"jsonrpc":"2.0","id":"cached","result":{"tools":["' + b"t" * 9000) == []
    assert not stream.mid_line
    assert stream.feed(b'"]}}\n{"jsonrpc":"2.0","method":"n"}\n') == [
        b'{"jsonrpc":"2.0","method":"n"}\n'
    ]


def test_a_line_cut_short_by_the_daemon_going_away_is_ended_before_anything_else() -> None:
    flights = book([1], [])
    stream = DaemonLines(flights)
    assert stream.feed(b'{"jsonrpc":"2.0","id":1,"result":{"te') != []
    assert stream.cut() == [b"\n"]
    # The client has no reply it can read: its request gets the error of one in flight.
    assert [json.loads(error)["id"] for error in flights.lost("gone")] == [1]
    assert stream.cut() == []  # nothing under way any more
    assert stream.feed(b'{"jsonrpc":"2.0","method":"n"}\n') == [b'{"jsonrpc":"2.0","method":"n"}\n']
