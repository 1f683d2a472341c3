"""Faults no real peer produces on demand, from a small aiohttp server whose handler each test
sets: 5xx, malformed bodies, streams that break off, priming events, lost sessions, and an
HTTP+SSE stream that drops. Auth challenges are in test_remote_auth_challenges.py."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from mcp_bridge import jsonrpc
from mcp_bridge.errors import RemoteError
from mcp_bridge.protocol import Era
from mcp_bridge.remote.legacy_sse import LegacySseTransport
from tests.fixtures.fault_server import FaultServer
from tests.fixtures.hostile_server import LIST, ok, started
from tests.fixtures.mcp_servers import INITIALIZED, Inbox, initialize_request


async def sse_response(request: web.Request, frames: list[bytes]) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for frame in frames:
        await response.write(frame)
    return response


def event(message: dict[str, Any], event_id: str | None = None) -> bytes:
    head = f"id: {event_id}\n" if event_id else ""
    return f"{head}data: {json.dumps(message)}\n\n".encode()


async def test_5xx_is_an_error_response_and_the_transport_recovers(
    fault_server: FaultServer, inbox: Inbox
) -> None:
    async def fail_once(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        fault_server.handler = lambda r, b: asyncio.sleep(0, ok(b))
        return web.Response(status=503, text="down for maintenance")

    fault_server.handler = fail_once
    async with started(fault_server, inbox) as transport:
        await transport.send(LIST)
        error = (await inbox.response(1))["error"]
        assert error["code"] == jsonrpc.REMOTE_UNAVAILABLE
        assert fault_server.url in error["message"]
        assert "503" in error["message"]
        await transport.send(jsonrpc.request(2, "tools/list"))
        assert (await inbox.response(2))["result"] == {"ok": True}


@pytest.mark.parametrize("payload", [b"{oops", b'"a string"'])
async def test_malformed_json_body_is_an_internal_error(
    fault_server: FaultServer, inbox: Inbox, payload: bytes
) -> None:
    async def garbage(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.Response(body=payload, content_type="application/json")

    fault_server.handler = garbage
    async with started(fault_server, inbox) as transport:
        await transport.send(LIST)
        error = (await inbox.response(1))["error"]
        assert error["code"] == jsonrpc.INTERNAL_ERROR
        assert fault_server.url in error["message"]


@pytest.mark.parametrize("era", [Era.MODERN, Era.LEGACY])
async def test_stream_dropped_before_the_response(
    fault_server: FaultServer, inbox: Inbox, era: Era
) -> None:
    progress = jsonrpc.notification("notifications/progress", {"progressToken": 1, "progress": 1})

    async def drop(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = await sse_response(request, [event(progress)])
        assert request.transport is not None
        request.transport.close()  # mid-stream, no response, no event id to resume from
        return response

    fault_server.handler = drop
    async with started(fault_server, inbox, era) as transport:
        await transport.send(LIST)
        error = (await inbox.response(1))["error"]
        assert error["code"] == jsonrpc.REMOTE_UNAVAILABLE
        assert "without the response" in error["message"]
        assert inbox.messages[0] == progress  # what came before the drop was delivered


@pytest.mark.parametrize("stall", ["before the headers", "mid-body"])
async def test_a_server_that_goes_silent_gives_an_error(
    fault_server: FaultServer, inbox: Inbox, stall: str
) -> None:
    async def stuck(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if stall == "mid-body":
            response = await sse_response(request, [b": still here\n\n"])
            await fault_server.closing.wait()
            return response
        await fault_server.closing.wait()
        return ok(body)

    fault_server.handler = stuck
    async with started(fault_server, inbox, read_timeout_s=0.2) as transport:
        await transport.send(LIST)
        error = (await inbox.response(1))["error"]
        assert error["code"] == jsonrpc.REMOTE_UNAVAILABLE
        assert fault_server.url in error["message"]


async def test_json_body_cut_short_is_an_error(fault_server: FaultServer, inbox: Inbox) -> None:
    async def cut(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "application/json", "Content-Length": "1000"}
        )
        await response.prepare(request)
        await response.write(b'{"jsonrpc":"2.0","id":1,"res')
        assert request.transport is not None
        request.transport.close()
        return response

    fault_server.handler = cut
    async with started(fault_server, inbox) as transport:
        await transport.send(LIST)
        error = (await inbox.response(1))["error"]
        assert error["code"] == jsonrpc.REMOTE_UNAVAILABLE
        assert "broke off" in error["message"]


async def test_http_error_with_jsonrpc_body_is_rekeyed(
    fault_server: FaultServer, inbox: Inbox
) -> None:
    async def refuse(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        error = jsonrpc.error_response(None, jsonrpc.INVALID_PARAMS, "missing _meta")
        return web.json_response(error, status=400)

    fault_server.handler = refuse
    async with started(fault_server, inbox) as transport:
        await transport.send(jsonrpc.request("abc", "tools/list"))
        reply = await inbox.response("abc")
        assert reply["error"] == {"code": jsonrpc.INVALID_PARAMS, "message": "missing _meta"}


async def test_202_to_a_request_is_an_error(fault_server: FaultServer, inbox: Inbox) -> None:
    async def accepted(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.Response(status=202)

    fault_server.handler = accepted
    async with started(fault_server, inbox) as transport:
        await transport.send(LIST)
        assert (await inbox.response(1))["error"]["code"] == jsonrpc.INTERNAL_ERROR


async def test_batch_response_delivers_each_element(
    fault_server: FaultServer, inbox: Inbox
) -> None:
    async def batch(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        log = jsonrpc.notification("notifications/message", {"level": "info", "data": "x"})
        return web.json_response([log, jsonrpc.result_response(body["id"], {})])

    fault_server.handler = batch
    async with started(fault_server, inbox, Era.LEGACY) as transport:
        await transport.send(LIST)
        await inbox.response(1)
        assert [m.get("method") for m in inbox.messages] == ["notifications/message", None]


async def test_priming_event_then_close_resumes_with_last_event_id(
    fault_server: FaultServer, inbox: Inbox
) -> None:
    async def primed(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if request.method == "POST" and body.get("method") == "initialize":
            result = {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {}}
            return web.json_response(
                jsonrpc.result_response(body["id"], result), headers={"Mcp-Session-Id": "s-1"}
            )
        if request.method == "POST" and "id" in body:
            # 2025-11-25: an id with empty data, a retry hint, then the server closes.
            return await sse_response(request, [b"id: ev-1\nretry: 10\ndata:\n\n"])
        if request.method == "POST":
            return web.Response(status=202)
        if request.headers.get("Last-Event-ID") == "ev-1":
            return await sse_response(
                request, [event(jsonrpc.result_response(1, {"resumed": True}), "ev-2")]
            )
        return web.Response(status=405)  # the plain GET stream: none offered

    fault_server.handler = primed
    async with started(fault_server, inbox, Era.LEGACY) as transport:
        await transport.send(initialize_request(0))
        await inbox.response(0)
        await transport.send(INITIALIZED)
        await transport.send(LIST)
        assert (await inbox.response(1))["result"] == {"resumed": True}
        resumes = [h for m, h, _ in fault_server.seen if m == "GET" and "Last-Event-ID" in h]
        assert resumes[0]["Mcp-Session-Id"] == "s-1"
        assert resumes[0]["MCP-Protocol-Version"] == "2025-11-25"
        assert all(h.get("Mcp-Session-Id") == "s-1" for m, h, b in fault_server.seen[1:])


async def test_legacy_get_stream_delivers_server_messages(
    fault_server: FaultServer, inbox: Inbox
) -> None:
    pushed = jsonrpc.notification("notifications/tools/list_changed")

    async def with_get(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if request.method == "POST" and body.get("method") == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {}, "serverInfo": {}}
            reply = jsonrpc.result_response(body["id"], result)
            return web.json_response(reply, headers={"Mcp-Session-Id": "s-9"})
        if request.method == "POST":
            return web.Response(status=202)
        if request.method == "GET":
            response = await sse_response(request, [event(pushed, "g-1")])
            await fault_server.closing.wait()  # held open, as a real GET stream is
            return response
        return web.Response(status=200)  # DELETE

    fault_server.handler = with_get
    async with started(fault_server, inbox, Era.LEGACY) as transport:
        await transport.send(initialize_request(0))
        await inbox.response(0)
        await transport.send(INITIALIZED)
        assert await inbox.wait_for(lambda m: m.get("method") == pushed["method"]) == pushed
    assert [m for m, _, _ in fault_server.seen][-1] == "DELETE"


async def test_many_requests_losing_the_session_replay_the_handshake_once(
    fault_server: FaultServer, inbox: Inbox
) -> None:
    sessions = iter(["s-1", "s-2", "s-3"])
    live: set[str] = set()

    async def forgetful(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if body.get("method") == "initialize":
            session = next(sessions)
            live.add(session)
            result = {"protocolVersion": "2025-11-25", "capabilities": {}, "serverInfo": {}}
            reply = jsonrpc.result_response(body["id"], result)
            return web.json_response(reply, headers={"Mcp-Session-Id": session})
        if request.headers.get("Mcp-Session-Id") not in live:
            return web.Response(status=404)  # 2025-11-25: the session is gone
        if request.method != "POST" or "id" not in body:
            return web.Response(status=405 if request.method == "GET" else 202)
        return ok(body)

    fault_server.handler = forgetful
    async with started(fault_server, inbox, Era.LEGACY) as transport:
        await transport.send(initialize_request(0))
        await inbox.response(0)
        await transport.send(INITIALIZED)
        live.clear()  # the server restarts and forgets every session
        for n in range(1, 9):
            await transport.send(jsonrpc.request(n, "tools/list"))
        for n in range(1, 9):
            assert "result" in await inbox.response(n)
        initializes = [b for b in fault_server.posts() if b.get("method") == "initialize"]
        assert len(initializes) == 2  # the client's own, and one replay for all eight
        assert transport.session.session_id == "s-2"
        assert len([m for m in inbox.messages if m.get("id") == 0]) == 1


# -- HTTP+SSE ---------------------------------------------------------------------------------


@dataclass
class SseSession:
    """One GET stream of a fake HTTP+SSE server: POSTs are answered on it."""

    queue: asyncio.Queue[bytes | None] = field(default_factory=asyncio.Queue)


async def test_legacy_sse_refuses_a_cross_origin_endpoint(fault_server: FaultServer) -> None:
    async def elsewhere(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return await sse_response(request, [b"event: endpoint\ndata: http://evil.example/m\n\n"])

    fault_server.handler = elsewhere
    transport = LegacySseTransport(fault_server.url)
    with pytest.raises(RemoteError, match="another origin"):
        await transport.start(Inbox().deliver)


async def test_legacy_sse_drop_fails_pending_then_reconnects_and_replays(
    fault_server: FaultServer, inbox: Inbox
) -> None:
    streams: list[SseSession] = []
    drop_next_request = True

    async def sse_server(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        nonlocal drop_next_request
        if request.method == "GET":
            session = SseSession()
            streams.append(session)
            response = await sse_response(
                request, [f"event: endpoint\ndata: /messages?s={len(streams)}\n\n".encode()]
            )
            while (frame := await session.queue.get()) is not None:
                await response.write(frame)
            return response
        current = streams[int(request.query["s"]) - 1]
        if body.get("method") == "initialize":
            result = {"protocolVersion": "2024-11-05", "capabilities": {}, "serverInfo": {}}
            current.queue.put_nowait(event(jsonrpc.result_response(body["id"], result)))
        elif body.get("method") == "tools/list":
            if drop_next_request:
                drop_next_request = False
                current.queue.put_nowait(None)  # the stream ends: the session is gone
            else:
                current.queue.put_nowait(event(jsonrpc.result_response(body["id"], {})))
        return web.Response(status=202)

    fault_server.handler = sse_server
    transport = LegacySseTransport(fault_server.url)
    await transport.start(inbox.deliver)
    try:
        await transport.send(initialize_request(0))
        await inbox.response(0)
        await transport.send(INITIALIZED)
        await transport.send(jsonrpc.request(1, "tools/list"))
        error = (await inbox.response(1))["error"]
        assert "closed before the response" in error["message"]

        await transport.send(jsonrpc.request(2, "tools/list"))
        assert (await inbox.response(2))["result"] == {}
        assert len(streams) == 2
        # The new stream's session got the client's handshake again, answered only to us.
        methods = [b.get("method") for m, h, b in fault_server.seen if m == "POST"]
        assert methods[-3:] == ["initialize", "notifications/initialized", "tools/list"]
        assert len([m for m in inbox.messages if m.get("id") == 0]) == 1
    finally:
        for stream in streams:
            stream.queue.put_nowait(None)
        await transport.aclose()
