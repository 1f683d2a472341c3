"""Issue 8, A: every request a transport sends gets exactly one answer, whatever the client
put in it and whatever the remote sends back; nothing it delivers fails to encode as JSON.
Faults no real peer produces come from tests/fixtures/hostile_server.py."""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from mcp_bridge import jsonrpc
from mcp_bridge.protocol import (
    HEADER_METHOD,
    HEADER_PROTOCOL_VERSION,
    META_PROTOCOL_VERSION,
    Era,
    TransportKind,
)
from mcp_bridge.remote.detect import connect
from mcp_bridge.remote.legacy_sse import LegacySseTransport
from mcp_bridge.remote.sse import MAX_RETRY_MS, SseParser
from mcp_bridge.remote.streamable import StreamableHttpTransport
from tests.fixtures.hostile_server import (
    LIST,
    Answer,
    HostileServer,
    http_sse,
    ok,
    raw_json,
    raw_sse,
    result_text,
    serving,
    started,
)
from tests.fixtures.mcp_servers import INITIALIZED, Inbox, initialize_request


@contextlib.asynccontextmanager
async def streamable(
    answer: Answer, era: Era = Era.MODERN
) -> AsyncIterator[tuple[StreamableHttpTransport, Inbox, HostileServer]]:
    inbox = Inbox()
    async with serving(answer) as server, started(server, inbox, era) as transport:
        yield transport, inbox, server


def answers_to(inbox: Inbox, request_id: object) -> list[dict[str, Any]]:
    return [m for m in inbox.messages if "method" not in m and m.get("id") == request_id]


async def the_one_answer(inbox: Inbox, request_id: object) -> dict[str, Any]:
    """The answer to `request_id`, after checking no second one follows and that all the
    transport delivered encodes as JSON."""
    answer = await inbox.response(request_id, timeout_s=10)
    await asyncio.sleep(0.05)
    assert answers_to(inbox, request_id) == [answer]
    for message in inbox.messages:
        jsonrpc.decode(jsonrpc.encode(message))
    return answer


# -- what the client sends --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["tools/list\r\nX-Injected: 1", "a\x00b", "tööls/list", " x"])
async def test_a_method_name_no_header_can_carry_goes_in_base64(method: str) -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return ok(body)

    async with streamable(answer) as (transport, inbox, server):
        await transport.send(jsonrpc.request(1, method))
        assert "result" in await the_one_answer(inbox, 1)
        sent = server.requests[0][1][HEADER_METHOD]
        assert sent.startswith("=?base64?")
        assert base64.b64decode(sent[len("=?base64?") : -2]).decode() == method


async def test_a_protocol_version_no_header_can_carry_goes_in_base64() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return ok(body)

    params = {"_meta": {META_PROTOCOL_VERSION: "2026-07-28\r\nX-Injected: 1"}}
    async with streamable(answer) as (transport, inbox, server):
        await transport.send(jsonrpc.request(1, "tools/list", params))
        assert "result" in await the_one_answer(inbox, 1)
        assert server.requests[0][1][HEADER_PROTOCOL_VERSION].startswith("=?base64?")


# -- what the remote answers ------------------------------------------------------------------

HOSTILE_RESULTS = {
    "a 5,000-digit integer": ('{"n":' + "7" * 5000 + "}", "5000 digits"),
    "NaN": ('{"n":NaN}', "NaN"),
    "Infinity": ('{"n":-Infinity}', "Infinity"),
    "1e400": ('{"n":1e400}', "too large"),
    "a lone surrogate": ('{"s":"\\ud800"}', "surrogate"),
    "deep nesting": ("[" * 300 + "]" * 300, "deep"),
}


@pytest.mark.parametrize("era", [Era.MODERN, Era.LEGACY])
@pytest.mark.parametrize("case", HOSTILE_RESULTS)
async def test_a_json_body_that_is_not_json_the_bridge_can_relay_is_an_error(
    case: str, era: Era
) -> None:
    result, named = HOSTILE_RESULTS[case]

    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return raw_json(result_text(body["id"], result))

    async with streamable(answer, era) as (transport, inbox, server):
        await transport.send(LIST)
        error = (await the_one_answer(inbox, 1))["error"]
        assert error["code"] == jsonrpc.INTERNAL_ERROR
        assert server.url in error["message"]
        assert named in error["message"]


@pytest.mark.parametrize("case", HOSTILE_RESULTS)
async def test_a_hostile_event_answering_the_request_fails_it_at_once(case: str) -> None:
    """The stream stays open after the bad answer: the request must not wait for its end."""
    result, named = HOSTILE_RESULTS[case]
    hold = asyncio.Event()

    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: " + result_text(body["id"], result) + b"\n\n")
        await hold.wait()
        return response

    async with streamable(answer) as (transport, inbox, _):
        await transport.send(LIST)
        try:
            error = (await the_one_answer(inbox, 1))["error"]
        finally:
            hold.set()
        assert named in error["message"]


async def test_a_hostile_notification_before_the_answer_is_skipped() -> None:
    progress = b'{"jsonrpc":"2.0","method":"notifications/progress","params":{"p":NaN}}'

    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        good = result_text(body["id"], "{}")
        return await raw_sse(request, [b"data: " + progress + b"\n\n", b"data: " + good + b"\n\n"])

    async with streamable(answer) as (transport, inbox, _):
        await transport.send(LIST)
        assert (await the_one_answer(inbox, 1))["result"] == {}


@pytest.mark.parametrize("era", [Era.MODERN, Era.LEGACY])
async def test_a_second_answer_to_the_same_request_is_dropped(era: Era) -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        once = result_text(body["id"], '{"n":1}')
        twice = result_text(body["id"], '{"n":2}')
        if body["method"] == "tools/list":
            return raw_json(b"[" + once + b"," + twice + b"]")
        return await raw_sse(request, [b"data: " + once + b"\n\n", b"data: " + twice + b"\n\n"])

    async with streamable(answer, era) as (transport, inbox, _):
        await transport.send(LIST)
        await transport.send(jsonrpc.request(2, "prompts/list"))
        assert (await the_one_answer(inbox, 1))["result"] == {"n": 1}
        assert (await the_one_answer(inbox, 2))["result"] == {"n": 1}


async def test_answers_with_ids_the_client_never_used_are_dropped() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        stray = [result_text(other, "{}") for other in ("1", 2, True)]
        return await raw_sse(request, [b"data: " + line + b"\n\n" for line in stray])

    async with streamable(answer) as (transport, inbox, _):
        await transport.send(LIST)
        assert (
            "ended its event stream without" in (await the_one_answer(inbox, 1))["error"]["message"]
        )
        assert [m["id"] for m in inbox.messages] == [1]


async def test_an_error_without_an_id_answers_the_request_it_came_back_on() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.json_response(jsonrpc.error_response(None, jsonrpc.PARSE_ERROR, "bad"))

    async with streamable(answer) as (transport, inbox, _):
        await transport.send(LIST)
        assert (await the_one_answer(inbox, 1))["error"]["message"] == "bad"


# -- SSE fields -------------------------------------------------------------------------------


@pytest.mark.parametrize("retry", [b"99999999999", b"9" * 5000])
def test_an_sse_retry_is_clamped(retry: bytes) -> None:
    parser = SseParser()
    parser.feed(b"retry: " + retry + b"\n\n")
    assert parser.retry_ms == MAX_RETRY_MS == 60_000


def test_an_sse_id_no_header_can_carry_is_ignored() -> None:
    parser = SseParser(last_event_id="1")
    parser.feed(b"id: a\x01b\ndata: x\n\nid: a\x7f\ndata: y\n\n")
    assert parser.last_event_id == "1"


async def test_a_huge_retry_on_a_post_stream_still_answers() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        good = result_text(body["id"], "{}")
        return await raw_sse(request, [b"retry: " + b"9" * 5000 + b"\n\ndata: " + good + b"\n\n"])

    async with streamable(answer) as (transport, inbox, _):
        await transport.send(LIST)
        assert (await the_one_answer(inbox, 1))["result"] == {}


# -- legacy sessions --------------------------------------------------------------------------


async def test_a_negotiated_version_no_header_can_carry_is_not_sent_back() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if body.get("method") == "initialize":
            result = {"protocolVersion": "2025-06-18\r\nX: 1", "capabilities": {}}
            return web.json_response(jsonrpc.result_response(body["id"], result))
        if "id" not in body:
            return web.Response(status=202)
        return ok(body)

    async with streamable(answer, Era.LEGACY) as (transport, inbox, server):
        await transport.send(initialize_request(0))
        await the_one_answer(inbox, 0)
        await transport.send(INITIALIZED)
        await transport.send(LIST)
        assert "result" in await the_one_answer(inbox, 1)
        assert HEADER_PROTOCOL_VERSION not in server.requests[-1][1]


async def legacy_sse_with(events: list[bytes]) -> Inbox:
    """An HTTP+SSE server that answers the first POST with these events on its stream (`ID`
    in them replaced by the request's id); returns what the transport delivered."""
    done = asyncio.Event()

    async def write(stream: web.StreamResponse, request_id: object) -> None:
        for frame in events:
            await stream.write(frame.replace(b"ID", str(request_id).encode()))
        await done.wait()

    answer = http_sse(write)
    inbox = Inbox()
    async with serving(answer) as server:
        transport = LegacySseTransport(server.url)
        await transport.start(inbox.deliver)
        try:
            await transport.send(LIST)
            await the_one_answer(inbox, 1)
        finally:
            done.set()
            await transport.aclose()
    return inbox


async def test_http_sse_a_hostile_answer_fails_its_request() -> None:
    inbox = await legacy_sse_with([b'data: {"jsonrpc":"2.0","id":ID,"result":{"n":NaN}}\n\n'])
    assert "NaN" in inbox.messages[0]["error"]["message"]


async def test_http_sse_fields_and_events_it_cannot_use_do_not_end_the_stream() -> None:
    huge_retry = b"retry: " + b"9" * 5000 + b"\n\n"
    answer = b'data: {"jsonrpc":"2.0","id":ID,"result":{}}\n\n'
    inbox = await legacy_sse_with([huge_retry, b"data: {]\n\n", answer])
    assert inbox.messages[0]["result"] == {}


async def test_detection_delivers_one_answer_to_the_initialize_it_probed_with() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if body.get("method") == "server/discover":
            return web.Response(status=400)
        result = result_text(body["id"], '{"protocolVersion":"2025-06-18","capabilities":{}}')
        return raw_json(b"[" + result + b"," + result + b"]")

    inbox = Inbox()
    async with serving(answer) as server:
        connection = await connect(
            server.url, TransportKind.AUTO, inbox.deliver, initialize=initialize_request(0)
        )
        try:
            assert connection.initialize_sent
            assert "result" in await the_one_answer(inbox, 0)
        finally:
            await connection.transport.aclose()
