"""FrontChannel: the LineChannel a BridgeSession reads in the engine. It puts the
CachedFront (cached_front.py) between the client and the session, and records the remote's
answers to cacheable requests into the server's AnswerBook as they pass to the client.

Lines are parsed only while that can matter: until the front turns transparent, and for
later lines that name a cacheable method; replies only while one is awaited.
"""

from __future__ import annotations

import collections
import logging
import uuid
from collections.abc import Callable

from mcp_bridge import jsonrpc
from mcp_bridge.bridge.channel import LineChannel, OversizedLine
from mcp_bridge.engine.answer_book import AnswerBook
from mcp_bridge.engine.answer_cache import CACHEABLE_METHODS, answer_key
from mcp_bridge.engine.cached_front import CachedFront, drop_key
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.protocol import SIGN_IN_URL_DATA, URL_ELICITATION_REQUIRED

__all__ = ["FrontChannel"]

log = logging.getLogger(__name__)

_CACHEABLE_MARKERS = tuple(f'"{method}"'.encode() for method in CACHEABLE_METHODS)
_SIGN_IN_MARKER = f'"{SIGN_IN_URL_DATA}"'.encode()
TOOLS_LIST_CHANGED: JsonObject = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}


class FrontChannel:
    """`on_cache_answer(message)`: the front answered this `initialize` or
    `server/discover` from the cache (the engine then rechecks the cache)."""

    def __init__(
        self,
        inner: LineChannel,
        front: CachedFront,
        book: AnswerBook,
        *,
        on_cache_answer: Callable[[JsonObject], None],
    ) -> None:
        self._inner = inner
        self._front = front
        self._book = book
        self._on_cache_answer = on_cache_answer
        self._ready: collections.deque[bytes] = collections.deque()
        self._awaited: dict[str, str] = {}  # drop_key(id) -> cache key of its answer
        self._watching = False

    @property
    def front(self) -> CachedFront:
        return self._front

    async def receive(self) -> bytes | OversizedLine | None:
        while not self._ready:
            line = await self._inner.receive()
            if not isinstance(line, bytes) or not self._may_matter(line):
                return line
            try:
                message = jsonrpc.decode(line)
            except jsonrpc.InvalidMessage:
                return line  # the session answers it as it answers any malformed line
            if not isinstance(message, dict):
                self._front.is_transparent = True  # a batch: an old client; relay as is
                self._ready.extend(jsonrpc.encode(held) for held in self._release_held())
                self._ready.append(line)
                break
            self._on_local(message, line)
        return self._ready.popleft()

    def send(self, line: bytes) -> None:
        if self._front.accepts_url_elicitation and _SIGN_IN_MARKER in line:
            line = _as_url_elicitation(line)
        if self._awaited or self._front.drops:
            try:
                reply = jsonrpc.decode(line)
            except jsonrpc.InvalidMessage:
                reply = None
            if isinstance(reply, dict):
                self._record(reply)
                if self._front.is_dropped(reply):
                    return
        self._inner.send(line)

    async def aclose(self) -> None:
        if self._watching:
            self._book.unwatch_tools(self._tools_changed)
        await self._inner.aclose()

    # -- local side -----------------------------------------------------------------

    def _may_matter(self, line: bytes) -> bool:
        return not self._front.is_transparent or any(m in line for m in _CACHEABLE_MARKERS)

    def _on_local(self, message: JsonObject, line: bytes) -> None:
        step = self._front.from_local(message)
        for answer in step.to_local:
            self._inner.send(jsonrpc.encode(answer))
        if step.to_local and message is self._front.held_opening():
            self._on_cache_answer(message)
        if step.to_local and self._front.answered_keys and not self._watching:
            self._watching = True
            self._book.watch_tools(self._tools_changed)
        for passed in step.to_remote:
            self._await_answer(passed)
            # The line as received when it is the message itself (raw JSON relayed).
            self._ready.append(line if passed is message else jsonrpc.encode(passed))

    def _release_held(self) -> list[JsonObject]:
        held, self._front.held = self._front.held, []
        for message in held:
            self._await_answer(message)
        return held

    def _await_answer(self, message: JsonObject) -> None:
        request_id = message.get("id")
        if "method" not in message or not jsonrpc.is_request_id(request_id):
            return
        assert isinstance(request_id, str | int)
        key = answer_key(message, self._front.handshake_version)
        if key is not None:
            self._awaited[drop_key(request_id)] = key

    # -- remote side ----------------------------------------------------------------

    def _record(self, reply: JsonObject) -> None:
        if "method" in reply or not self._awaited:
            return
        request_id = reply.get("id")
        if not jsonrpc.is_request_id(request_id):
            return
        assert isinstance(request_id, str | int)
        key = self._awaited.pop(drop_key(request_id), None)
        if key is not None and "result" in reply:
            self._book.record(key, reply["result"])

    def _tools_changed(self) -> None:
        log.debug("telling a client its tool list changed")
        self._inner.send(jsonrpc.encode(TOOLS_LIST_CHANGED))


def _as_url_elicitation(line: bytes) -> bytes:
    """An error whose request waited for a sign-in, as the 2025-11-25 way to say "open this
    URL, then retry" (error -32042, URL-mode elicitation): the client shows the URL itself
    instead of a bare error. Any other line comes back unchanged."""
    try:
        reply = jsonrpc.decode(line)
    except jsonrpc.InvalidMessage:
        return line
    error = reply.get("error") if isinstance(reply, dict) else None
    data = error.get("data") if isinstance(error, dict) else None
    url = data.get(SIGN_IN_URL_DATA) if isinstance(data, dict) else None
    if not isinstance(url, str) or not isinstance(reply, dict) or "method" in reply:
        return line
    assert isinstance(error, dict)
    message = str(error.get("message", "Sign in, then retry"))
    elicitation = {
        "mode": "url",
        "elicitationId": str(uuid.uuid4()),
        "url": url,
        "message": message,
    }
    return jsonrpc.encode(
        {
            "jsonrpc": "2.0",
            "id": reply.get("id"),
            "error": {
                "code": URL_ELICITATION_REQUIRED,
                "message": message,
                "data": {"elicitations": [elicitation]},
            },
        }
    )
