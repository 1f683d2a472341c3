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
from mcp_bridge.bridge.channel import IncomingLine, LineChannel, OutgoingLine, ParsedLine
from mcp_bridge.bridge.large_line import LargeLine
from mcp_bridge.engine.answer_book import AnswerBook
from mcp_bridge.engine.answer_cache import CACHEABLE_METHODS, answer_key
from mcp_bridge.engine.cached_front import CachedFront, drop_key
from mcp_bridge.engine.sign_in_rounds import STATE_PREFIX, Answer, SignInRounds
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.protocol import SIGN_IN_URL_DATA, URL_ELICITATION_REQUIRED

__all__ = ["FrontChannel"]

log = logging.getLogger(__name__)

_CACHEABLE_MARKERS = tuple(f'"{method}"'.encode() for method in CACHEABLE_METHODS)
_SIGN_IN_MARKER = f'"{SIGN_IN_URL_DATA}"'.encode()
_TOOL_CALL_MARKER = b'"tools/call"'
# The requests that may get a sign-in round (MRTR methods), and the retry answering one.
_MRTR_MARKERS = (_TOOL_CALL_MARKER, b'"resources/read"', b'"prompts/get"')
_OUR_STATE_MARKER = f'"{STATE_PREFIX}'.encode()
_TOOL_CALL_PARSE_LIMIT = 64 * 1024
_TOOL_CALLS_REMEMBERED = 1024
TOOLS_LIST_CHANGED: JsonObject = {"jsonrpc": "2.0", "method": "notifications/tools/list_changed"}
LOGGER = "mcp-bridge"


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
        rounds: SignInRounds | None = None,
    ) -> None:
        self._inner = inner
        # A 2026-07-28 client that takes URL elicitation gets a sign-in as an MRTR round.
        self._rounds = rounds or SignInRounds()
        self._front = front
        self._book = book
        self._on_cache_answer = on_cache_answer
        self._ready: collections.deque[bytes | ParsedLine] = collections.deque()
        self._awaited: dict[str, str] = {}  # drop_key(id) -> cache key of its answer
        self._watching = False
        # Ids of the client's recent tools/call requests: a sign-in it waited for in vain is
        # answered as a tool result, which hosts show in the conversation.
        self._tool_calls: collections.OrderedDict[str, None] = collections.OrderedDict()
        # The client was told (in its initialize answer) that the server logs: it may then
        # be sent notifications/message, and hears from the bridge that a login ended.
        self._may_log = False
        # The opening the front answered from the cache, replayed to the remote when a
        # request released it: drop_key(its id) -> the id of the request it went ahead of.
        self._released_by: dict[str, jsonrpc.RequestId] = {}

    @property
    def front(self) -> CachedFront:
        return self._front

    def hands_sign_in_url(self, request_id: jsonrpc.RequestId) -> bool:
        """True when a sign-in this request meets reaches its client as a URL to open (an
        MRTR round, or error -32042 for a 2025-11-25 client that declared URL elicitation),
        so it is answered once the URL is known and the bridge opens no tab for it. An
        opening the front answered speaks for the request that released it: its own reply
        is dropped, and that request, sent right after it, meets the same sign-in."""
        request_id = self._speaking_for(request_id)
        return self._rounds.answers_early(request_id) or self._front.accepts_url_elicitation

    def sign_in_url_held(self, request_id: jsonrpc.RequestId) -> str | None:
        """The sign-in URL the client of this request already holds (the request answers
        a round of it): its login is waited for, any other's URL handed over at once."""
        return self._rounds.url_held(self._speaking_for(request_id))

    def _speaking_for(self, request_id: jsonrpc.RequestId) -> jsonrpc.RequestId:
        """The request whose client a sign-in `request_id` meets is told of: itself, or
        for an opening the front answered from the cache, the request that released it."""
        return self._released_by.get(drop_key(request_id), request_id)

    async def receive(self) -> IncomingLine | None:
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
                self._ready.extend(ParsedLine(held) for held in self._release_held())
                self._ready.append(line)
                break
            self._on_local(message)
        return self._ready.popleft()

    def send(self, line: OutgoingLine) -> None:
        if isinstance(line, LargeLine):
            # Never a sign-in error (those are small), and too large to cache: only the
            # bookkeeping of its id, without parsing it.
            if line.reply_id is not None:
                self._awaited.pop(drop_key(line.reply_id), None)
                if self._front.is_dropped({"id": line.reply_id}):
                    return
            self._inner.send(line)
            return
        if _SIGN_IN_MARKER in line:
            line = self._sign_in_answer(line)
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
        if not self._front.is_transparent or any(m in line for m in _CACHEABLE_MARKERS):
            return True
        if _OUR_STATE_MARKER in line:
            return True  # it may answer a sign-in round: never forward our state upstream
        # A tool call's id is worth a parse while small; a huge call (an upload) is not.
        return len(line) <= _TOOL_CALL_PARSE_LIMIT and any(m in line for m in _MRTR_MARKERS)

    def _on_local(self, message: JsonObject) -> None:
        round_step = self._rounds.from_local(message)
        if isinstance(round_step, Answer):
            self._inner.send(jsonrpc.encode(round_step.reply))
            return
        message = round_step.message  # a retry comes without our MRTR fields
        if message.get("method") == "tools/call" and jsonrpc.is_request_id(message.get("id")):
            request_id = message["id"]
            assert isinstance(request_id, str | int)
            self._tool_calls[drop_key(request_id)] = None
            while len(self._tool_calls) > _TOOL_CALLS_REMEMBERED:
                self._tool_calls.popitem(last=False)
        step = self._front.from_local(message)
        for answer in step.to_local:
            self._inner.send(jsonrpc.encode(answer))
            key = answer_key(message, self._front.handshake_version)
            if key is not None:
                self._note_initialize_result(key, answer.get("result"))
        if step.to_local and message is self._front.held_opening():
            self._on_cache_answer(message)
        if step.to_local and self._front.answered_keys and not self._watching:
            self._watching = True
            self._book.watch_tools(self._tools_changed)
        for passed in step.to_remote:
            self._await_answer(passed)
            self._ready.append(ParsedLine(passed))
            if passed is not message:
                self._note_released(passed, message)

    def _note_released(self, held: JsonObject, by: JsonObject) -> None:
        """`held` goes to the remote ahead of `by`, the request that released it (at most
        the opening and its notification: the front releases once)."""
        held_id, by_id = held.get("id"), by.get("id")
        if not (jsonrpc.is_request_id(held_id) and jsonrpc.is_request_id(by_id)):
            return
        assert isinstance(held_id, str | int)
        assert isinstance(by_id, str | int)
        if drop_key(held_id) in self._front.drops:
            self._released_by[drop_key(held_id)] = by_id

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
            self._note_initialize_result(key, reply["result"])

    def _sign_in_answer(self, line: bytes) -> bytes:
        """An error whose request waited for a sign-in, in the form this client handles
        best: an MRTR round with a URL-mode elicitation for a 2026-07-28 request that
        declared it (sign_in_rounds.py), URL-mode elicitation (-32042) for a 2025-11-25
        client that declared it, a tool result for a tool call (hosts show it in the
        conversation; a bare error reads as a broken server), else the error as it is (its
        message names the URL)."""
        try:
            reply = jsonrpc.decode(line)
        except jsonrpc.InvalidMessage:
            return line
        sign_in = _sign_in_of(reply)
        if sign_in is None or not isinstance(reply, dict):
            return line
        request_id, url, message = sign_in
        if request_id is not None and (
            round_reply := self._rounds.sign_in_reply(request_id, url, message)
        ):
            return jsonrpc.encode(round_reply)
        if self._front.accepts_url_elicitation:
            return jsonrpc.encode(_url_elicitation_error(request_id, url, message))
        if request_id is None or drop_key(request_id) not in self._tool_calls:
            return line
        del self._tool_calls[drop_key(request_id)]
        result: JsonObject = {"content": [{"type": "text", "text": message}], "isError": True}
        return jsonrpc.encode(jsonrpc.result_response(request_id, result))

    def login_lost(self, server: str, what: str) -> None:
        """The server's grant is dead (the authorization server refused the refresh): say
        so, where the protocol lets us (a 2025 client whose server declared logging)."""
        if not self._may_log:
            return
        text = (
            f"The sign-in to {server} has ended ({what}). The next request signs in again "
            f"in the browser; or run `mcp-bridge login {server}`."
        )
        params: JsonObject = {"level": "warning", "logger": LOGGER, "data": text}
        note = {"jsonrpc": "2.0", "method": "notifications/message", "params": params}
        self._inner.send(jsonrpc.encode(note))

    def _note_initialize_result(self, key: str, result: object) -> None:
        if key.startswith("initialize@") and isinstance(result, dict):
            capabilities = result.get("capabilities")
            self._may_log = isinstance(capabilities, dict) and "logging" in capabilities

    def _tools_changed(self) -> None:
        log.debug("telling a client its tool list changed")
        self._inner.send(jsonrpc.encode(TOOLS_LIST_CHANGED))


def _sign_in_of(reply: object) -> tuple[jsonrpc.RequestId | None, str, str] | None:
    """(id, URL, message) of an error reply that carries a sign-in URL, else None."""
    if not isinstance(reply, dict) or "method" in reply:
        return None
    error = reply.get("error")
    data = error.get("data") if isinstance(error, dict) else None
    url = data.get(SIGN_IN_URL_DATA) if isinstance(data, dict) else None
    if not isinstance(url, str):
        return None
    assert isinstance(error, dict)
    request_id = reply.get("id")
    usable_id = request_id if isinstance(request_id, str | int) else None
    return usable_id, url, str(error.get("message", "Sign in, then retry"))


def _url_elicitation_error(
    request_id: jsonrpc.RequestId | None, url: str, message: str
) -> JsonObject:
    """The 2025-11-25 way to say "open this URL, then retry": error -32042 with one
    URL-mode elicitation; the client shows the URL itself instead of a bare error."""
    elicitation = {
        "mode": "url",
        "elicitationId": str(uuid.uuid4()),
        "url": url,
        "message": message,
    }
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "error": {
            "code": URL_ELICITATION_REQUIRED,
            "message": message,
            "data": {"elicitations": [elicitation]},
        },
    }
