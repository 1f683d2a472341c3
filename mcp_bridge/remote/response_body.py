"""Turning an HTTP answer from an MCP server into JSON-RPC messages, or into the reason it
carries none.

Shared by the Streamable HTTP and HTTP+SSE transports. A message (a JSON body, an SSE
event) may be as large as the transport's `max_message_bytes` (the SDK caps SSE events at
1 MiB; a 20 MB tool result is legitimate); past it, reading stops and the request fails.
Bodies are read incrementally and each copy is dropped as the next is made, so memory
stays proportional to the largest single message.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from mcp_bridge import jsonrpc
from mcp_bridge.errors import RemoteError
from mcp_bridge.jsonrpc import JsonObject, RequestId
from mcp_bridge.remote.sse import SseEvent, SseParser

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

# What aiohttp raises when a connection cannot be made or breaks mid-body. Timeouts are
# OSError subclasses in aiohttp (ServerTimeoutError), and asyncio.TimeoutError is TimeoutError.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError)


def connection_errors() -> tuple[type[BaseException], ...]:
    """CONNECTION_ERRORS plus aiohttp's own (imported lazily: the shim never loads aiohttp)."""
    import aiohttp

    return (*CONNECTION_ERRORS, aiohttp.ClientError)


class RequestFailed(RemoteError):
    """A request will get no answer from the remote; becomes a JSON-RPC error for the client.

    `code` and `data` are JSON-RPC error fields: the remote's own when it sent an error body,
    else REMOTE_UNAVAILABLE (the remote could not be reached or broke off) or INTERNAL_ERROR
    (it answered something that is not MCP).
    """

    def __init__(self, what: str, *, code: int, next_step: str = "", data: object = None) -> None:
        super().__init__(what, next_step=next_step)
        self.code = code
        self.data = data

    def response_to(self, request_id: RequestId) -> JsonObject:
        return jsonrpc.error_response(request_id, self.code, str(self), self.data)


def unreachable(url: str, exc: BaseException) -> RequestFailed:
    detail = str(exc) or type(exc).__name__
    return RequestFailed(
        f"The MCP server at {url} could not be reached ({detail})",
        code=jsonrpc.REMOTE_UNAVAILABLE,
        next_step="Check that it is running; the next request will try again",
    )


class RemoteSilent(RequestFailed):
    """The remote sent nothing for the read timeout: overloaded, stuck, or (for a
    server/discover probe) a legacy server that never answers unknown methods."""


def silent(url: str, timeout_s: float) -> RequestFailed:
    return RemoteSilent(
        f"The MCP server at {url} sent nothing for {timeout_s:g} s",
        code=jsonrpc.REMOTE_UNAVAILABLE,
        next_step="It may be overloaded or stuck; retry the request",
    )


def broke_off(url: str, exc: BaseException) -> RequestFailed:
    if isinstance(exc, TimeoutError):
        return RemoteSilent(
            f"The MCP server at {url} went silent in the middle of its answer",
            code=jsonrpc.REMOTE_UNAVAILABLE,
            next_step="It may be overloaded or stuck; retry the request",
        )
    detail = str(exc) or type(exc).__name__
    return RequestFailed(
        f"The connection to the MCP server at {url} broke off ({detail})",
        code=jsonrpc.REMOTE_UNAVAILABLE,
        next_step="Retry the request",
    )


def unforeseen(url: str, exc: Exception) -> RequestFailed:
    """A request's answer when the transport failed in a way nothing foresaw (a bug)."""
    return RequestFailed(
        f"mcp-bridge failed on a request to {url} ({type(exc).__name__}: {exc})",
        code=jsonrpc.INTERNAL_ERROR,
        next_step="Retry it; if it keeps failing, report it with mcp-bridge's log file",
    )


def messages_of(value: object) -> list[JsonObject]:
    """The messages in one decoded body: an object, or a batch (2025-03-26 allowed JSON-RPC
    batches in responses, so each element is a message of its own)."""
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [item for item in value if isinstance(item, dict)]
    return []


class MalformedMessage(RequestFailed):
    """The remote sent a message the bridge cannot relay."""

    def __init__(self, what: str) -> None:
        super().__init__(
            what,
            code=jsonrpc.INTERNAL_ERROR,
            next_step="Report this to the server's owner; the next request will try again",
        )


def decode_messages(url: str, body: bytes | bytearray | str) -> list[JsonObject]:
    """The JSON-RPC messages in a body or event, decoded as strictly as a stdin line: what
    the client would be sent must encode again (no NaN, no 5,000-digit integer, no lone
    surrogate). Raises MalformedMessage."""
    try:
        if isinstance(body, str):
            value: object = jsonrpc.decode_text(body, "it")
        else:
            value = jsonrpc.decode_text(body.decode("utf-8-sig"), "it")
    except (UnicodeDecodeError, jsonrpc.InvalidMessage) as exc:
        detail = "it is not UTF-8" if isinstance(exc, UnicodeDecodeError) else str(exc)
        raise MalformedMessage(
            f"The MCP server at {url} sent a message mcp-bridge cannot relay: {detail}"
        ) from exc
    messages = messages_of(value)
    if not messages:
        raise MalformedMessage(f"The MCP server at {url} sent JSON that is not a JSON-RPC message")
    return messages


def response_id_in(text: str) -> RequestId | None:
    """The id of the response a malformed message seems to be, read leniently (NaN, huge
    numbers taken as null), so the request it answered can be failed; None if unknown."""
    try:
        value = _LENIENT.decode(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or "method" in value:
        return None
    request_id = value.get("id")
    return request_id if jsonrpc.is_request_id(request_id) else None


def _int_or_none(literal: str) -> int | None:
    return int(literal) if len(literal) < 1000 else None


_LENIENT = json.JSONDecoder(
    parse_constant=lambda _: None, parse_float=lambda _: None, parse_int=_int_or_none
)


# An error body, or a 2xx acknowledgement, is read up to this much; past it the status
# alone speaks for the answer.
SMALL_BODY_BYTES = 1 << 20


def too_large(url: str, size: int, limit: int, *, exact: bool) -> RequestFailed:
    """The failure for a message over the limit: `size` is its length when `exact` (the
    server declared it), else how much had come when reading stopped."""
    if exact:
        what = f"a {_mib(size)} message; mcp-bridge's limit is {_mib(limit)} per message"
    else:
        what = (
            f"a message larger than mcp-bridge's limit of {_mib(limit)} per message "
            f"(reading stopped at {_mib(size)})"
        )
    return RequestFailed(
        f"The MCP server at {url} sent {what}",
        code=jsonrpc.INTERNAL_ERROR,
        next_step="Ask for less at a time (a smaller page, range or file), or raise the "
        "limit with `mcp-bridge run --max-message-bytes`",
    )


def _mib(size: int) -> str:
    return f"{size / (1 << 20):.1f} MiB"


async def read_body(url: str, response: aiohttp.ClientResponse, limit: int) -> bytearray:
    """The whole body, or RequestFailed once it passes `limit` bytes (before reading any
    of it when Content-Length says so). One growing buffer: aiohttp's read() holds every
    chunk and their join at once, twice the body."""
    declared = response.content_length
    if declared is not None and declared > limit:
        raise too_large(url, declared, limit, exact=True)
    if declared:
        return await _read_declared(url, response, declared)
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > limit:
            raise too_large(url, len(body), limit, exact=False)
    return body


async def _read_declared(url: str, response: aiohttp.ClientResponse, declared: int) -> bytearray:
    """A body of a declared length, into a buffer of that size: a growing one may hold
    an eighth more, and does while the body is decoded."""
    body = bytearray(declared)
    filled = 0
    async for chunk in response.content.iter_any():
        end = filled + len(chunk)
        if end > declared:  # aiohttp stops at Content-Length; a server cannot get past it
            raise too_large(url, end, declared, exact=False)
        body[filled:end] = chunk
        filled = end
    del body[filled:]  # a body cut short: what came (the parse then says what is wrong)
    return body


async def read_small(response: aiohttp.ClientResponse) -> bytes:
    """A body that should be small (an error, an acknowledgement), or b"" if it is not."""
    try:
        return bytes(await read_body(str(response.url), response, SMALL_BODY_BYTES))
    except RequestFailed:
        return b""


async def read_messages(url: str, response: aiohttp.ClientResponse, limit: int) -> list[JsonObject]:
    """The messages of a JSON body. The bytes are gone before the text is parsed, and the
    text before the messages are handed on: a large result is held twice at most."""
    text = (await read_body(url, response, limit)).decode("utf-8-sig", errors="replace")
    return decode_messages(url, text)


async def failure_of_status(url: str, response: aiohttp.ClientResponse) -> RequestFailed:
    """The failure an HTTP error status stands for. A JSON-RPC error in the body wins: it is
    the server's own answer (e.g. 404 + -32601 from a modern server, 400 + -32022)."""
    body = await read_small(response)
    error = _jsonrpc_error_in(body)
    if error is not None:
        message = error.get("message")
        return RequestFailed(
            message if isinstance(message, str) else f"HTTP {response.status}",
            code=error["code"],
            data=error.get("data"),
        )
    reason = f"HTTP {response.status} {response.reason or ''}".rstrip()
    if response.status in (401, 403):
        return RequestFailed(
            f"The MCP server at {url} refused the request as not authorized ({reason})",
            code=jsonrpc.INTERNAL_ERROR,
            next_step="Log in to it again (`mcp-bridge login`), or check the --header token",
        )
    if response.status >= 500:
        return RequestFailed(
            f"The MCP server at {url} failed with {reason}",
            code=jsonrpc.REMOTE_UNAVAILABLE,
            next_step="It may be restarting; the next request will try again",
        )
    return RequestFailed(
        f"The MCP server at {url} rejected the request with {reason}",
        code=jsonrpc.INTERNAL_ERROR,
        next_step="Check the server URL and the --header options",
    )


def _jsonrpc_error_in(body: bytes) -> JsonObject | None:
    try:
        value = jsonrpc.decode_text(body.decode("utf-8-sig"), "it") if body else None
    except (UnicodeDecodeError, jsonrpc.InvalidMessage):
        return None  # then the status speaks for the answer
    if not isinstance(value, dict) or not isinstance(value.get("error"), dict):
        return None
    error: JsonObject = value["error"]
    code = error.get("code")
    if not isinstance(code, int) or isinstance(code, bool):
        return None
    return error


def error_message_of(body: bytes) -> str:
    """The `error.message` of a JSON-RPC error body, or "" (used to spot session loss)."""
    error = _jsonrpc_error_in(body)
    message = error.get("message") if error is not None else None
    return message if isinstance(message, str) else ""


def is_sse(response: aiohttp.ClientResponse) -> bool:
    return response.content_type == "text/event-stream"


def is_json(response: aiohttp.ClientResponse) -> bool:
    return response.content_type == "application/json"


async def sse_events(
    url: str, response: aiohttp.ClientResponse, parser: SseParser
) -> AsyncIterator[SseEvent]:
    """Each event of an SSE body as it completes. The parser keeps `last_event_id` and
    `retry_ms` for a reconnect. Ends normally at end of body; a broken connection raises one
    of `connection_errors()`, an event over the parser's cap RequestFailed (the stream is
    then useless: the caller drops it)."""
    parser.new_stream()
    async for chunk in response.content.iter_any():
        events = parser.feed(chunk)
        while events:
            # Popped, not iterated: nothing here keeps an event (as large as its message)
            # alive while the caller handles it.
            yield events.pop(0)
        if parser.too_large is not None:
            limit = parser.max_event_bytes or 0
            raise too_large(url, parser.too_large, limit, exact=False)


def event_messages(url: str, event: SseEvent) -> list[JsonObject]:
    """The JSON-RPC messages in one `message` event. A malformed event becomes the error
    response to the request it answered, when a lenient reading can tell which (it is then
    that request's one answer); otherwise it is logged and skipped."""
    if event.event != "message":
        return []
    try:
        return decode_messages(url, event.data)
    except MalformedMessage as exc:
        answered = response_id_in(event.data)
        if answered is not None:
            return [exc.response_to(answered)]
        log.warning("skipping an SSE event from %s: %s", url, exc.what)
        return []


def no_response(url: str, request_id: RequestId, where: str) -> RequestFailed:
    return RequestFailed(
        f"The MCP server at {url} ended {where} without the response to request {request_id!r}",
        code=jsonrpc.REMOTE_UNAVAILABLE,
        next_step="Retry the request",
    )


async def read_answer(
    url: str, response: aiohttp.ClientResponse, request_id: RequestId, limit: int
) -> list[JsonObject]:
    """The messages of an answer, read up to the response to `request_id`, for a caller that
    looks at them before (or instead of) delivering them: probes, a replayed handshake. An
    error body that is not JSON-RPC gives none. Messages over `limit`: RequestFailed."""
    if is_sse(response) and response.status < 400:
        collected: list[JsonObject] = []
        with contextlib.suppress(*connection_errors()):
            async for event in sse_events(url, response, SseParser(max_event_bytes=limit)):
                collected.extend(event_messages(url, event))
                if any("method" not in m and m.get("id") == request_id for m in collected):
                    break
        return collected
    try:
        body = await read_body(url, response, limit)
        return decode_messages(url, body) if body else []
    except RequestFailed:
        if response.status < 400:
            raise
        return []
