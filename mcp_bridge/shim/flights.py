"""What the shim must remember to survive a daemon restart. Pure: lines in, lines out.

- The client's handshake (`initialize` and `notifications/initialized`): a new daemon
  session knows nothing of it, so it is replayed, the `initialize` under an id of ours
  whose answer the client never sees (it already has one).
- The requests in flight: when the daemon dies, each gets an error at once instead of
  hanging until the host's timeout (60 s to forever).

Parsing every line would cost time on large results (a 100 KB one: ~0.2 ms), so only
lines that can matter are parsed: requests from the client (small). A reply's id is read
from its first bytes, where the daemon's encoder puts it (`{"jsonrpc":"2.0","id":7,
"result":`); the member after the id tells a reply from a server's request, whose ids are
the server's own and may equal the client's. A line in another shape is parsed whole, up
to a size.
"""

from __future__ import annotations

import json
import re

from mcp_bridge import jsonrpc

__all__ = ["PARSE_LIMIT_BYTES", "REPLAY_ID_PREFIX", "Flights"]

REPLAY_ID_PREFIX = "mcp-bridge-replay-"
PARSE_LIMIT_BYTES = 1024 * 1024
# `{"jsonrpc":"2.0","id":7,"result":` or `{"id":"a","error":`: a reply whose id leads.
_LEADING_REPLY_ID = re.compile(
    rb'\{(?:"jsonrpc":"2\.0",)?"id":(-?\d+|"(?:[^"\\]|\\.)*"),"(?:result|error)":'
)
_LEADING_BYTES = 512


class Flights:
    """Feed it every line both ways; ask it what to do when the daemon is lost."""

    def __init__(self) -> None:
        self._in_flight: dict[str, jsonrpc.RequestId] = {}  # the id's JSON text -> the id
        self._initialize: dict[str, object] | None = None
        self._initialized: bytes | None = None
        self._replays = 0
        self._drops: set[str] = set()  # replies the client must not see (it has them)
        self._ending: str | None = None  # the request a reply under way settles at its end

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def from_client(self, line: bytes) -> str | None:
        """A line the client sent on its way to the daemon (its newline may end it); the
        key of the request it put in flight, if it is one (for `unsent`)."""
        if len(line) > PARSE_LIMIT_BYTES:
            return None  # not a request we could answer for: far larger than any request
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            return None  # the daemon answers malformed input itself
        if not isinstance(message, dict) or "method" not in message:
            return None
        method, request_id = message.get("method"), message.get("id")
        if method == "notifications/initialized":
            self._initialized = line.rstrip(b"\r\n")
        elif isinstance(request_id, str | int) and jsonrpc.is_request_id(request_id):
            key = json.dumps(request_id)
            self._in_flight[key] = request_id
            if method == "initialize":
                self._initialize = message
            return key
        return None

    def unsent(self, key: str | None) -> None:
        """The request `from_client` recorded never reached a daemon: it is sent again
        later, so it is not lost with this one."""
        if key is not None:
            self._in_flight.pop(key, None)

    def answered_here(self, request_id: jsonrpc.RequestId) -> None:
        """The shim answered this request itself (from the cache): the daemon's answer to
        it, which follows, is dropped."""
        key = json.dumps(request_id)
        self._in_flight.pop(key, None)
        self._drops.add(key)

    def from_daemon(self, line: bytes) -> bool:
        """A line from the daemon (its newline may end it); False when the client must not
        see it (the answer to a replayed handshake, or to a request answered here)."""
        key = self._reply_id(line)
        return True if key is None else self._settle(key)

    def from_daemon_head(self, head: bytes | bytearray) -> bool | None:
        """The first bytes of a line from the daemon whose end has not come: what
        `from_daemon` would say of the line, or None when these bytes do not tell. A
        reply the client is to see settles its request only at its end (`line_ended`):
        cut short by the daemon going away, the request is still in flight for `lost`."""
        self._ending = None
        if not self._in_flight and not self._drops:
            return True
        key = _leading_reply_key(head)
        if key is None:
            return None
        if key in self._drops:
            self._drops.discard(key)
            return False
        self._ending = key
        return True

    def line_ended(self) -> None:
        """The line `from_daemon_head` let through has all reached the client."""
        if self._ending is not None:
            self._in_flight.pop(self._ending, None)
            self._ending = None

    def _settle(self, key: str) -> bool:
        if key in self._drops:
            self._drops.discard(key)
            return False
        self._in_flight.pop(key, None)
        return True

    def lost(self, reason: str) -> list[bytes]:
        """Error replies for every request in flight (the daemon went away)."""
        errors = [
            jsonrpc.encode(jsonrpc.error_response(request_id, jsonrpc.REMOTE_UNAVAILABLE, reason))
            for request_id in self._in_flight.values()
        ]
        self._in_flight.clear()
        self._drops.clear()
        self._ending = None
        return errors

    def replay(self) -> list[bytes]:
        """The client's handshake, for a new daemon session."""
        if self._initialize is None:
            return []
        self._replays += 1
        replay_id = f"{REPLAY_ID_PREFIX}{self._replays}"
        self._drops.add(json.dumps(replay_id))
        lines = [jsonrpc.encode({**self._initialize, "id": replay_id})]
        if self._initialized is not None:
            lines.append(self._initialized)
        return lines

    def _reply_id(self, line: bytes) -> str | None:
        if not self._in_flight and not self._drops:
            return None
        key = _leading_reply_key(line)
        if key is not None:
            return key
        if len(line) > PARSE_LIMIT_BYTES:
            return None  # not a reply in the daemon's shape: nothing to settle
        try:
            message = json.loads(line)
        except (ValueError, RecursionError):
            return None
        if not isinstance(message, dict) or "method" in message or "id" not in message:
            return None
        return json.dumps(message["id"])


def _leading_reply_key(data: bytes | bytearray) -> str | None:
    """The key of the reply whose first bytes `data` are, in the daemon's shape; None when
    they are not those of one (or not yet enough of them)."""
    match = _LEADING_REPLY_ID.match(data, 0, _LEADING_BYTES)
    return None if match is None else json.dumps(json.loads(match.group(1)))
