"""CachedFront: answer what a host asks first from the remote's last answers, and hold the
messages so answered until the client asks something only the remote can answer.

Pure and standard library only (the shim runs it too): messages in, what to send out.

Theory of operation

    front = CachedFront(cache.get)
    step = front.from_local(message)   # step.to_local: answers now; step.to_remote: pass on

- HOLDING (the start): `initialize`, `server/discover` and the first `tools/list` are
  answered from the cache when it has them for the version asked; `ping` is answered at
  once. What was answered is held, with any notification that follows, in order.
- The first request the cache cannot answer ends the hold: the held messages go to the
  remote first (the remote session needs the client's handshake), then that request. The
  remote's replies to the held requests are dropped (`drops`): the client has its answers.
  From then on the front is TRANSPARENT and looks at nothing.

Why hold rather than pass the handshake on at once: a host starts copies of a server it
never uses (probes, health checks, two lanes) and kills them within a second. A held
handshake contacts no remote and starts no login; the first real request does both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from mcp_bridge import jsonrpc
from mcp_bridge.engine.answer_cache import answer_key
from mcp_bridge.jsonrpc import JsonObject, RequestId
from mcp_bridge.protocol import URL_ELICITATION_VERSIONS

__all__ = ["CachedFront", "FrontStep"]

Lookup = Callable[[str], JsonObject | None]


# A NamedTuple and a plain class, not dataclasses: the shim imports this module, and
# `dataclasses` costs it ~10 ms and ~1.4 MB at start.


class FrontStep(NamedTuple):
    to_local: tuple[JsonObject, ...] = ()
    to_remote: tuple[JsonObject, ...] = ()


class CachedFront:
    __slots__ = (
        "accepts_url_elicitation",
        "answered_keys",
        "drops",
        "handshake_version",
        "held",
        "is_transparent",
        "lookup",
    )

    def __init__(self, lookup: Lookup, *, is_transparent: bool = False) -> None:
        self.lookup = lookup
        self.is_transparent = is_transparent
        self.held: list[JsonObject] = []
        # Requests answered here whose remote replies must not reach the client.
        self.drops: set[str] = set()
        # The keys answered from the cache (the engine re-checks them against the remote).
        self.answered_keys: list[str] = []
        self.handshake_version: str | None = None
        # The client speaks 2025-11-25 and declared URL-mode elicitation: a sign-in URL
        # can be handed to it as error -32042 (the only era that has it).
        self.accepts_url_elicitation = False

    def from_local(self, message: JsonObject) -> FrontStep:
        if message.get("method") == "initialize":
            self._saw_initialize(message.get("params"))
        if self.is_transparent:
            return FrontStep(to_remote=(message,))
        request_id = message.get("id")
        if "method" not in message or not jsonrpc.is_request_id(request_id):
            self.held.append(message)  # a notification keeps its place after the handshake
            return FrontStep()
        assert isinstance(request_id, str | int)
        if message["method"] == "ping":
            return FrontStep(to_local=(jsonrpc.result_response(request_id, {}),))
        answer = self._cached_answer(message)
        if answer is None:
            return self._release(message)
        self.held.append(message)
        self.drops.add(drop_key(request_id))
        return FrontStep(to_local=(jsonrpc.result_response(request_id, answer),))

    def _saw_initialize(self, params: object) -> None:
        params = params if isinstance(params, dict) else {}
        version = params.get("protocolVersion")
        self.handshake_version = version if isinstance(version, str) else None
        capabilities = params.get("capabilities")
        elicitation = capabilities.get("elicitation") if isinstance(capabilities, dict) else None
        self.accepts_url_elicitation = (
            version in URL_ELICITATION_VERSIONS
            and isinstance(elicitation, dict)
            and isinstance(elicitation.get("url"), dict)
        )

    def held_opening(self) -> JsonObject | None:
        """The `initialize` or `server/discover` the front answered and holds, if any."""
        for message in self.held:
            if message.get("method") in ("initialize", "server/discover"):
                return message
        return None

    def is_dropped(self, reply: JsonObject) -> bool:
        """True (once) for the remote's reply to a request the front answered."""
        if "method" in reply or not self.drops:
            return False
        request_id = reply.get("id")
        if not jsonrpc.is_request_id(request_id):
            return False
        assert isinstance(request_id, str | int)
        key = drop_key(request_id)
        if key in self.drops:
            self.drops.discard(key)
            return True
        return False

    def _cached_answer(self, message: JsonObject) -> JsonObject | None:
        key = answer_key(message, self.handshake_version)
        if key is None or key in self.answered_keys:
            return None  # asked twice: the client wants it fresh (after list_changed)
        answer = self.lookup(key)
        if answer is not None:
            self.answered_keys.append(key)
        return answer

    def _release(self, message: JsonObject) -> FrontStep:
        self.is_transparent = True
        held, self.held = self.held, []
        return FrontStep(to_remote=(*held, message))


def drop_key(request_id: RequestId) -> str:
    """Ids compare by JSON value: 1 and "1" are different requests."""
    return f"{type(request_id).__name__}:{request_id}"
