"""Issue 8, A, fuzzed: a remote that answers anything at all (any status, any content type,
JSON-ish bodies holding NaN, 5,000-digit numbers, lone surrogates, ids the client never
used, SSE streams with hostile fields and line ends, cut into arbitrary chunks) still gets
every request exactly one answer, raises nothing out of a transport, and hands the client
only what encodes as JSON. Both eras of Streamable HTTP, and HTTP+SSE.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mcp_bridge import jsonrpc
from mcp_bridge.protocol import Era
from mcp_bridge.remote import sse
from mcp_bridge.remote.base import RemoteTransport
from mcp_bridge.remote.legacy_sse import LegacySseTransport
from mcp_bridge.remote.streamable import StreamableHttpTransport
from tests.fixtures.hostile_server import HostileServer, serving
from tests.fixtures.json_ish import json_ish
from tests.fixtures.mcp_servers import Inbox

REQUEST_IDS: tuple[jsonrpc.RequestId, ...] = (7, "q")
PLACEHOLDER = "@ID@"  # replaced by the JSON of the id of the request being answered

_ids = st.sampled_from(
    [PLACEHOLDER] * 4 + ["null", "true", "7.0", '"other"', "9" * 5000, '"q"', "7", "{}"]
)
_messages: st.SearchStrategy[str] = st.one_of(
    st.builds('{{"jsonrpc":"2.0","id":{},"result":{}}}'.format, _ids, json_ish),
    st.builds(
        '{{"jsonrpc":"2.0","id":{},"error":{{"code":{},"message":{}}}}}'.format,
        _ids,
        json_ish,
        json_ish,
    ),
    st.builds('{{"jsonrpc":"2.0","method":"notifications/progress","params":{}}}'.format, json_ish),
    st.builds('{{"jsonrpc":"2.0","id":{},"method":"ping","params":{}}}'.format, _ids, json_ish),
    st.builds('{{"jsonrpc":"2.0","id":{}}}'.format, _ids),
    json_ish,
    st.text(max_size=30),
)
_bodies = st.one_of(
    _messages, st.lists(_messages, min_size=1, max_size=3).map(lambda m: f"[{','.join(m)}]")
)
_sse_lines = st.one_of(
    _messages.map(lambda message: f"data: {message}"),
    st.sampled_from(["event: message", "event: other", ": keep-alive", "data:", "data", "retry"]),
    st.text(max_size=8).map(lambda text: f"id: {text}"),
    st.one_of(st.integers(0, 30).map(str), st.just("9" * 5000), st.text(max_size=4)).map(
        lambda value: f"retry: {value}"
    ),
)
_sse_streams = st.builds(
    lambda events, newline: "".join(newline.join([*lines, "", ""]) for lines in events),
    st.lists(st.lists(_sse_lines, min_size=1, max_size=4), max_size=4),
    st.sampled_from(["\n", "\r\n", "\r"]),
)


@dataclass(frozen=True)
class Script:
    """How the fault server answers each request."""

    status: int
    content_type: str
    text: str
    raw_tail: bytes  # bytes no UTF-8 encoder writes, after the text
    cuts: tuple[int, ...]  # chunk sizes the body is written in

    def body_for(self, request_id: object) -> bytes:
        text = self.text.replace(PLACEHOLDER, jsonrpc.encode([request_id])[1:-1].decode())
        return text.encode("utf-8", "surrogatepass") + self.raw_tail

    def chunks(self, body: bytes) -> list[bytes]:
        pieces, at = [], 0
        for size in self.cuts:
            pieces.append(body[at : at + size])
            at += size
        return [*pieces, body[at:]]


def _scripts(content_types: list[str]) -> st.SearchStrategy[Script]:
    return st.builds(
        Script,
        st.sampled_from([200, 200, 200, 202, 400, 401, 404, 500]),
        st.sampled_from(content_types),
        st.one_of(_bodies, _sse_streams),
        st.sampled_from([b"", b"", b"\xff", b"\xed\xa0\x80", b"\xef\xbb\xbf"]),
        st.lists(st.integers(1, 40), max_size=4).map(tuple),
    )


_streamable_scripts = _scripts(["application/json", "text/event-stream", "text/plain"])


async def _answer_streamable(
    script: Script, request: web.Request, body: dict[str, Any]
) -> web.StreamResponse:
    if request.method != "POST" or "id" not in body:
        return web.Response(status=405 if request.method == "GET" else 202)
    payload = script.body_for(body["id"])
    response = web.StreamResponse(status=script.status)
    response.content_type = script.content_type
    await response.prepare(request)
    for chunk in script.chunks(payload):
        await response.write(chunk)
    await response.write_eof()
    return response


class Errors(logging.Handler):
    """Collects what mcp_bridge logs at ERROR: a traceback there is a fault let through."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def errors_logged() -> Iterator[list[logging.LogRecord]]:
    handler = Errors()
    logger = logging.getLogger("mcp_bridge")
    logger.addHandler(handler)
    try:
        yield handler.records
    finally:
        logger.removeHandler(handler)


async def _exchange(transport: RemoteTransport, inbox: Inbox) -> None:
    """Send the requests, wait for their answers, and check the contract."""
    with errors_logged() as errors:
        await transport.start(inbox.deliver)
        try:
            for request_id in REQUEST_IDS:
                await transport.send(jsonrpc.request(request_id, "tools/call", {"name": "x"}))
            for request_id in REQUEST_IDS:
                await inbox.response(request_id, timeout_s=20)
            await asyncio.sleep(0.02)  # a second answer would be here by now
        finally:
            await transport.aclose()
    assert [r.getMessage() for r in errors] == []
    for request_id in REQUEST_IDS:
        answers = [m for m in inbox.messages if "method" not in m and m.get("id") == request_id]
        assert len(answers) == 1, answers
        assert type(answers[0]["id"]) is type(request_id)
    for message in inbox.messages:
        assert jsonrpc.decode(jsonrpc.encode(message)) == message


FUZZ = settings(
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _run_fuzz(
    answer: Callable[[Any, web.Request, dict[str, Any]], Coroutine[Any, Any, web.StreamResponse]],
    scripts: st.SearchStrategy[Script],
    make: Callable[[str], RemoteTransport],
) -> None:
    """One event loop and one server for the whole run; a transport per example."""
    current: list[Script] = []

    async def handle(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return await answer(current[-1], request, body)

    with asyncio.Runner() as runner:
        context = serving(handle)
        server: HostileServer = runner.run(context.__aenter__())
        try:

            @FUZZ
            @given(scripts)
            def example(script: Script) -> None:
                current.append(script)
                runner.run(_exchange(make(server.url), Inbox()))

            example()
        finally:
            runner.run(context.__aexit__(None, None, None))


@pytest.fixture(autouse=True)
def short_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """A legacy stream resumes after the server's `retry:`; the clamp is tested elsewhere,
    here it only has to keep each example short."""
    monkeypatch.setattr(sse, "MAX_RETRY_MS", 20)


@pytest.mark.parametrize("era", [Era.MODERN, Era.LEGACY])
def test_streamable_http_answers_every_request_once(era: Era) -> None:
    _run_fuzz(
        _answer_streamable,
        _streamable_scripts,
        lambda url: StreamableHttpTransport(url, era),
    )


# -- HTTP+SSE: the answers come on the GET stream ---------------------------------------------

_sse_scripts = _scripts(["text/event-stream"]).filter(lambda script: script.status == 200)


@dataclass
class HttpSseServer:
    """The stream names its endpoint, then, for each request POSTed, writes the script."""

    posted: list[asyncio.Queue[object]]  # one queue per GET stream, the newest last

    async def answer(
        self, script: Script, request: web.Request, body: dict[str, Any]
    ) -> web.StreamResponse:
        if request.method == "POST":
            self.posted[-1].put_nowait(body.get("id"))
            return web.Response(status=202)
        posted: asyncio.Queue[object] = asyncio.Queue()
        self.posted.append(posted)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"event: endpoint\ndata: /messages\n\n")
        for _ in REQUEST_IDS:
            request_id = await posted.get()
            for chunk in script.chunks(script.body_for(request_id)):
                await response.write(chunk)
            await response.write(b"\n\n")  # ends an event the script left open
        await response.write_eof()  # the stream ends: whatever is pending is answered
        return response


def test_http_sse_answers_every_request_once() -> None:
    _run_fuzz(HttpSseServer([]).answer, _sse_scripts, LegacySseTransport)
