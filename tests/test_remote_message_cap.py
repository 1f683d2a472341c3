"""Issue 8, B: memory from the remote is bounded. A message over the per-message cap
(ConnectOptions.max_message_bytes) becomes that request's JSON-RPC error naming its size
and the limit, and the stream is dropped as soon as the cap is passed (an endless `data:`
line included); below the cap, memory stays proportional to the message."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from mcp_bridge import jsonrpc
from mcp_bridge.protocol import Era
from mcp_bridge.remote.endpoint import DEFAULT_MAX_MESSAGE_BYTES, ConnectOptions
from mcp_bridge.remote.legacy_sse import LegacySseTransport
from mcp_bridge.remote.sse import SseEvent, SseParser
from mcp_bridge.remote.streamable import StreamableHttpTransport
from tests.fixtures.hostile_server import (
    LIST,
    Answer,
    http_sse,
    raw_json,
    raw_sse,
    result_text,
    serving,
    started,
)
from tests.fixtures.mcp_servers import INITIALIZED, Inbox, initialize_request

LIMIT = 1 << 20

# -- the parser -------------------------------------------------------------------------------


def test_the_default_cap_is_generous() -> None:
    assert DEFAULT_MAX_MESSAGE_BYTES == 64 << 20
    assert ConnectOptions().max_message_bytes == DEFAULT_MAX_MESSAGE_BYTES


def test_an_endless_data_line_is_stopped_at_the_cap_with_what_came_before() -> None:
    parser = SseParser(max_event_bytes=100)
    assert parser.feed(b"data: small\n\ndata: ") == [SseEvent("small")]
    fed = 6
    while parser.too_large is None:
        assert parser.feed(b"x" * 10) == []
        fed += 10
        assert fed < 200, "the parser kept buffering past its cap"
    assert parser.too_large > 100


def test_many_data_lines_count_together() -> None:
    parser = SseParser(max_event_bytes=100)
    assert parser.feed(b"data: " + b"y" * 60 + b"\ndata: " + b"y" * 60 + b"\n\n") == []
    assert parser.too_large is not None
    assert parser.too_large >= 120


def test_an_event_at_the_cap_passes_and_so_do_comments_between_events() -> None:
    parser = SseParser(max_event_bytes=100)
    keepalives = b": ping\n" * 50
    events = parser.feed(keepalives + b"data: " + b"z" * 94 + b"\n\n" + keepalives)
    assert events == [SseEvent("z" * 94)]  # 100 bytes as sent
    assert parser.too_large is None


def test_a_new_stream_starts_clean_but_keeps_the_resume_state() -> None:
    parser = SseParser(max_event_bytes=100)
    parser.feed(b"id: 7\nretry: 5\ndata: {}\n\ndata: half a li")
    parser.new_stream()
    assert parser.feed(b"data: fresh\n\n") == [SseEvent("fresh", id="7")]
    assert (parser.last_event_id, parser.retry_ms) == ("7", 5)


# -- the transports ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def capped(
    answer: Answer, era: Era = Era.MODERN
) -> AsyncIterator[tuple[StreamableHttpTransport, Inbox]]:
    inbox = Inbox()
    async with (
        serving(answer) as server,
        started(server, inbox, era, max_message_bytes=LIMIT) as transport,
    ):
        yield transport, inbox


async def endless(request: web.Request, head: bytes, content_type: str) -> web.StreamResponse:
    """`head`, then "x" forever: only the client hanging up ends it."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    await response.prepare(request)
    await response.write(head)
    with contextlib.suppress(ConnectionError):
        while True:
            await response.write(b"x" * 65536)
    return response


def assert_names_the_size_and_limit(error: dict[str, Any]) -> None:
    assert error["code"] == jsonrpc.INTERNAL_ERROR
    assert "1.0 MiB" in error["message"]  # the limit
    assert "larger than" in error["message"] or "MiB message" in error["message"]


async def test_an_endless_sse_data_line_fails_the_request() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return await endless(request, b"data: ", "text/event-stream")

    async with capped(answer) as (transport, inbox):
        await transport.send(LIST)
        assert_names_the_size_and_limit((await inbox.response(1, timeout_s=10))["error"])


async def test_an_endless_json_body_fails_the_request() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return await endless(request, b'{"jsonrpc":"2.0","id":1,"result":"', "application/json")

    async with capped(answer, Era.LEGACY) as (transport, inbox):
        await transport.send(LIST)
        assert_names_the_size_and_limit((await inbox.response(1, timeout_s=10))["error"])


async def test_a_json_body_declared_too_large_is_not_read() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return raw_json(result_text(body["id"], '"' + "x" * (2 * LIMIT) + '"'))

    async with capped(answer) as (transport, inbox):
        await transport.send(LIST)
        error = (await inbox.response(1, timeout_s=10))["error"]
        assert_names_the_size_and_limit(error)
        assert "2.0 MiB" in error["message"]  # Content-Length said so


async def test_a_huge_error_body_does_not_stop_the_status_from_answering() -> None:
    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.Response(status=502, body=b"x" * (4 * LIMIT))

    async with capped(answer) as (transport, inbox):
        await transport.send(LIST)
        assert "502" in (await inbox.response(1, timeout_s=10))["error"]["message"]


async def test_a_message_under_the_cap_still_passes() -> None:
    text = "x" * (LIMIT - 100)

    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        line = result_text(body["id"], f'"{text[: LIMIT - 200]}"')
        return await raw_sse(request, [b"data: " + line + b"\n\n"])

    async with capped(answer) as (transport, inbox):
        await transport.send(LIST)
        assert "result" in await inbox.response(1, timeout_s=10)


async def test_http_sse_a_message_over_the_cap_fails_the_waiting_requests() -> None:
    async def write(stream: web.StreamResponse, request_id: object) -> None:
        await stream.write(b"data: ")
        while True:
            await stream.write(b"x" * 65536)

    answer = http_sse(write)
    inbox = Inbox()
    async with serving(answer) as server:
        transport = LegacySseTransport(server.url, ConnectOptions(max_message_bytes=LIMIT))
        await transport.start(inbox.deliver)
        try:
            await transport.send(LIST)
            assert_names_the_size_and_limit((await inbox.response(1, timeout_s=10))["error"])
        finally:
            await transport.aclose()


async def test_the_legacy_get_stream_drops_a_message_over_the_cap_and_reconnects() -> None:
    pushed = jsonrpc.notification("notifications/tools/list_changed")
    gets = 0

    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        nonlocal gets
        if body.get("method") == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {}}
            reply = jsonrpc.result_response(body["id"], result)
            return web.json_response(reply, headers={"Mcp-Session-Id": "s-1"})
        if request.method != "GET":
            return web.Response(status=202)
        gets += 1
        if gets == 1:
            return await endless(request, b"retry: 10\ndata: ", "text/event-stream")
        return await raw_sse(request, [b"data: " + jsonrpc.encode(pushed) + b"\n\n"])

    async with capped(answer, Era.LEGACY) as (transport, inbox):
        await transport.send(initialize_request(0))
        await inbox.response(0)
        await transport.send(INITIALIZED)
        assert await inbox.wait_for(lambda m: m.get("method") == pushed["method"], 10) == pushed


# -- memory below the cap -------------------------------------------------------------------

PAYLOAD_MB = 8


@pytest.mark.parametrize("as_sse", [False, True])
async def test_the_transport_holds_no_copy_of_the_body_while_the_client_line_is_made(
    as_sse: bool,
) -> None:
    """What the session does with a delivered message (encode it for stdout) costs the
    parsed message, the encoded text and its bytes: 3x the payload. The transport must
    add nothing to that: not the body's bytes, not its text, not the SSE event's data."""
    payload = result_text(1, '{"text":"' + "x" * (PAYLOAD_MB << 20) + '"}')

    async def answer(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if as_sse:
            return await raw_sse(request, [b"data: " + payload + b"\n\n"])
        return raw_json(payload)

    encoded = asyncio.Event()

    async def deliver(message: dict[str, Any]) -> None:
        jsonrpc.encode(message)
        encoded.set()

    async with serving(answer) as server:
        transport = StreamableHttpTransport(server.url, Era.MODERN)
        await transport.start(deliver)
        tracemalloc.start()
        try:
            await transport.send(LIST)
            await asyncio.wait_for(encoded.wait(), 30)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
            await transport.aclose()
    assert peak < 3.3 * len(payload), f"peak {peak / len(payload):.2f}x the payload"


def _rss_mb() -> float:
    with open("/proc/self/status") as lines:
        return next(int(line.split()[1]) / 1024 for line in lines if line.startswith("VmRSS:"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
async def test_a_freed_message_sized_buffer_leaves_memory() -> None:
    """Once a 30 MB block was freed, glibc's sliding threshold would put the next 20 MB
    one on the heap, to stay resident once freed."""
    async with serving(lambda request, body: asyncio.sleep(0, web.Response())) as server:
        transport = StreamableHttpTransport(server.url, Era.MODERN)
        await transport.start(Inbox().deliver)
        await transport.aclose()
    for size_mb in (30, 20, 20):
        before = _rss_mb()
        block = bytearray(size_mb << 20)
        block[::4096] = b"x" * len(block[::4096])  # every page touched: resident
        del block
        assert _rss_mb() - before < 5
