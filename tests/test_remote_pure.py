"""The sans-I/O parts of `remote`: SSE parsing, request headers, era verdicts, the legacy
session record. No sockets."""

from __future__ import annotations

import base64

import pytest

from mcp_bridge import jsonrpc
from mcp_bridge.protocol import META_PROTOCOL_VERSION
from mcp_bridge.remote.backoff import ReconnectBackoff
from mcp_bridge.remote.era_probe import (
    ProbeAnswer,
    ProbeVerdict,
    classify_discover,
    classify_initialize,
    discover_request,
)
from mcp_bridge.remote.headers import encode_header_value, modern_request_headers
from mcp_bridge.remote.legacy_session import LegacySession
from mcp_bridge.remote.response_body import RequestFailed, decode_messages, messages_of
from mcp_bridge.remote.sse import SseEvent, SseParser

# -- SSE (WHATWG "event stream interpretation") ----------------------------------------------


def feed_bytewise(parser: SseParser, data: bytes) -> list[SseEvent]:
    events: list[SseEvent] = []
    for i in range(len(data)):
        events.extend(parser.feed(data[i : i + 1]))
    return events


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_sse_every_line_ending_gives_the_same_events(newline: bytes) -> None:
    stream = newline.join([b"event: message", b"id: 7", b"data: {}", b"", b"data: 2", b"", b""])
    for events in (SseParser().feed(stream), feed_bytewise(SseParser(), stream)):
        assert events == [SseEvent("{}", "message", "7"), SseEvent("2", "message", "7")]


def test_sse_cr_lf_split_across_chunks_is_one_line_end() -> None:
    parser = SseParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r\n") == [SseEvent("a")]


def test_sse_multi_line_data_joins_with_newlines() -> None:
    assert SseParser().feed(b"data: a\ndata:b\ndata:  c\n\n") == [SseEvent("a\nb\n c")]


def test_sse_comments_are_keep_alives() -> None:
    assert SseParser().feed(b": ping\n\n:\n\ndata: x\n\n") == [SseEvent("x")]


def test_sse_priming_event_sets_the_id_and_dispatches_nothing() -> None:
    # 2025-11-25: a server may send an id with empty data, then close; the client resumes.
    parser = SseParser()
    assert parser.feed(b"id: prime-1\nretry: 250\ndata:\n\n") == []
    assert parser.last_event_id == "prime-1"
    assert parser.retry_ms == 250


def test_sse_retry_must_be_ascii_digits() -> None:
    parser = SseParser()
    parser.feed("retry: ²\nretry: 1x\n\n".encode())
    assert parser.retry_ms is None


def test_sse_id_with_nul_is_ignored() -> None:
    parser = SseParser(last_event_id="1")
    parser.feed(b"id: a\x00b\ndata: x\n\n")
    assert parser.last_event_id == "1"


def test_sse_bom_only_at_the_start_even_split() -> None:
    parser = SseParser()
    assert parser.feed(b"\xef") == []
    assert parser.feed(b"\xbb\xbfdata: a\n\n") == [SseEvent("a")]
    # A BOM later in the stream is data, not a BOM.
    assert parser.feed("data: \ufeffb\n\n".encode()) == [SseEvent("\ufeffb")]


def test_sse_named_event_and_field_without_colon() -> None:
    assert SseParser().feed(b"event: endpoint\ndata: /messages?s=1\n\n") == [
        SseEvent("/messages?s=1", "endpoint")
    ]
    assert SseParser().feed(b"data\ndata: x\n\n") == [SseEvent("\nx")]


def test_sse_incomplete_event_at_end_is_not_dispatched() -> None:
    assert SseParser().feed(b"data: partial") == []


def test_sse_utf8_split_across_chunks() -> None:
    data = "data: héllo €\n\n".encode()
    assert feed_bytewise(SseParser(), data) == [SseEvent("héllo €")]


def test_sse_large_line_in_small_chunks() -> None:
    payload = b"x" * 3_000_000
    parser = SseParser()
    events: list[SseEvent] = []
    stream = b"data: " + payload + b"\n\n"
    for i in range(0, len(stream), 65536):
        events.extend(parser.feed(stream[i : i + 65536]))
    assert len(events) == 1
    assert len(events[0].data) == len(payload)


# -- headers (2026-07-28 streamable-http.mdx, version, method, name, base64) -----------------


@pytest.mark.parametrize("value", ["get_weather", "a b", "file:///tmp/x.txt", "!~"])
def test_header_plain_visible_ascii_passes_as_is(value: str) -> None:
    assert encode_header_value(value) == value


@pytest.mark.parametrize(
    "value", ["héllo", "天气", "tab\there", " leading", "trailing ", "line\nbreak", "=?base64?x?="]
)
def test_header_other_values_are_base64_sentinels(value: str) -> None:
    encoded = encode_header_value(value)
    assert encoded.startswith("=?base64?")
    assert encoded.endswith("?=")
    assert base64.b64decode(encoded[len("=?base64?") : -2]).decode() == value


def test_modern_headers_for_tools_call() -> None:
    message = jsonrpc.request(
        1,
        "tools/call",
        {"name": "météo", "arguments": {}, "_meta": {META_PROTOCOL_VERSION: "2026-07-28"}},
    )
    headers = modern_request_headers(message)
    assert headers["MCP-Protocol-Version"] == "2026-07-28"
    assert headers["Mcp-Method"] == "tools/call"
    assert headers["Mcp-Name"] == "=?base64?" + base64.b64encode("météo".encode()).decode() + "?="


def test_modern_headers_name_is_uri_for_resources_read_and_absent_for_lists() -> None:
    read = jsonrpc.request(1, "resources/read", {"uri": "file:///a"})
    assert modern_request_headers(read)["Mcp-Name"] == "file:///a"
    listing = jsonrpc.request(2, "tools/list", {})
    assert "Mcp-Name" not in modern_request_headers(listing)


def test_modern_headers_version_follows_meta() -> None:
    message = jsonrpc.request(1, "tools/list", {"_meta": {META_PROTOCOL_VERSION: "2027-01-01"}})
    assert modern_request_headers(message)["MCP-Protocol-Version"] == "2027-01-01"


# -- era verdicts (2026-07-28 versioning.mdx, streamable-http.mdx §Backward Compatibility) ---


def answer(status: int, *messages: jsonrpc.JsonObject, request_id: str = "p") -> ProbeAnswer:
    return ProbeAnswer(request_id, status, messages)


def err(code: int, request_id: object = "p", data: object = None) -> jsonrpc.JsonObject:
    return jsonrpc.error_response(request_id, code, "x", data)  # type: ignore[arg-type]


def test_discover_result_is_modern() -> None:
    result = {"supportedVersions": ["2026-07-28"], "capabilities": {}}
    assert (
        classify_discover(answer(200, jsonrpc.result_response("p", result))) is ProbeVerdict.MODERN
    )


@pytest.mark.parametrize("code", sorted(jsonrpc.MODERN_ERROR_CODES))
def test_recognised_modern_error_is_modern_never_a_fallback(code: int) -> None:
    assert classify_discover(answer(400, err(code))) is ProbeVerdict.MODERN


def test_unsupported_version_listing_only_handshake_versions_is_legacy() -> None:
    refusal = err(jsonrpc.UNSUPPORTED_PROTOCOL_VERSION, data={"supported": ["2025-11-25"]})
    assert classify_discover(answer(400, refusal)) is ProbeVerdict.LEGACY_STREAMABLE


@pytest.mark.parametrize(
    "reply",
    [
        answer(400),  # empty body
        answer(400, err(jsonrpc.INVALID_REQUEST, None)),  # "Missing session ID" from the SDK
        answer(200, err(jsonrpc.METHOD_NOT_FOUND)),  # a stateless legacy server
        answer(200, jsonrpc.result_response("p", {"tools": []})),  # not a DiscoverResult
    ],
)
def test_other_discover_answers_fall_back_to_initialize(reply: ProbeAnswer) -> None:
    assert classify_discover(reply) is ProbeVerdict.LEGACY_STREAMABLE


@pytest.mark.parametrize("status", [404, 405])
def test_discover_without_a_post_endpoint_tries_sse(status: int) -> None:
    assert classify_discover(answer(status)) is ProbeVerdict.TRY_SSE


@pytest.mark.parametrize("status", [401, 403, 500, 503])
def test_discover_auth_refusal_or_server_error_is_no_verdict(status: int) -> None:
    assert classify_discover(answer(status)) is ProbeVerdict.ERROR


def test_initialize_answers() -> None:
    init_result = jsonrpc.result_response("p", {"protocolVersion": "2025-11-25"})
    assert classify_initialize(answer(200, init_result)) is ProbeVerdict.LEGACY_STREAMABLE
    assert classify_initialize(answer(405)) is ProbeVerdict.TRY_SSE
    assert classify_initialize(answer(404)) is ProbeVerdict.TRY_SSE
    assert classify_initialize(answer(400)) is ProbeVerdict.TRY_SSE
    assert classify_initialize(answer(502)) is ProbeVerdict.ERROR
    refusal = err(jsonrpc.UNSUPPORTED_PROTOCOL_VERSION, data={"supported": ["2026-07-28"]})
    assert classify_initialize(answer(400, refusal)) is ProbeVerdict.MODERN


def test_discover_request_carries_the_clients_capabilities() -> None:
    initialize = jsonrpc.request(
        0,
        "initialize",
        {"capabilities": {"sampling": {}}, "clientInfo": {"name": "claude", "version": "1"}},
    )
    meta = discover_request(initialize)["params"]["_meta"]
    assert meta["io.modelcontextprotocol/protocolVersion"] == "2026-07-28"
    assert meta["io.modelcontextprotocol/clientCapabilities"] == {"sampling": {}}
    assert meta["io.modelcontextprotocol/clientInfo"]["name"] == "claude"
    assert (
        discover_request(None)["params"]["_meta"]["io.modelcontextprotocol/clientCapabilities"]
        == {}
    )


# -- legacy session record, bodies, backoff ---------------------------------------------------


def test_legacy_session_version_comes_from_the_result_not_the_offer() -> None:
    session = LegacySession()
    session.saw_client_message(jsonrpc.request(0, "initialize", {"protocolVersion": "2025-11-25"}))
    assert session.saw_initialize_response(
        jsonrpc.result_response(0, {"protocolVersion": "2025-06-18"})
    )
    session.session_id = "s1"
    assert session.headers(jsonrpc.request(1, "tools/list")) == {
        "Mcp-Session-Id": "s1",
        "MCP-Protocol-Version": "2025-06-18",
    }
    # An initialize opens a fresh session: it carries neither header.
    assert session.headers(jsonrpc.request(2, "initialize")) == {}


def test_legacy_session_new_handshake_forgets_the_old_session() -> None:
    session = LegacySession(session_id="old", protocol_version="2025-03-26")
    session.saw_client_message(jsonrpc.request(5, "initialize", {}))
    assert (session.session_id, session.protocol_version, session.initialize_id) == (None, None, 5)


def test_batch_bodies_give_each_message() -> None:
    batch = b'[{"jsonrpc":"2.0","id":1,"result":{}},{"jsonrpc":"2.0","method":"n"}]'
    assert [m.get("id") for m in decode_messages("u", batch)] == [1, None]
    assert messages_of(42) == []


@pytest.mark.parametrize("body", [b"{not json", b"42", b"[]"])
def test_malformed_bodies_are_request_failures(body: bytes) -> None:
    with pytest.raises(RequestFailed) as failure:
        decode_messages("http://h/mcp", body)
    assert failure.value.code == jsonrpc.INTERNAL_ERROR
    assert "http://h/mcp" in str(failure.value)


def test_backoff_doubles_caps_and_resets() -> None:
    backoff = ReconnectBackoff(first_delay_s=0.5, max_delay_s=2.0)
    delays = []
    for _ in range(5):
        backoff.failed()
        delays.append(backoff.delay_s)
    assert delays == [0.5, 1.0, 2.0, 2.0, 2.0]
    backoff.succeeded()
    assert backoff.delay_s == 0.0
