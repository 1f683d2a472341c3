"""The local side of a bridge session as the session sees it: a channel of lines.

`BridgeSession` takes any LineChannel: the process's own stdio (`stdio.StdioChannel`, for
`run --no-daemon`) or a shim's connection to the daemon (`daemon/socket_channel.py`). A line
is one JSON-RPC message without its newline: bytes, or for a large message a LargeLine.
A channel that had to parse a line itself (the engine's front) hands on the message, so
no line is decoded twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from mcp_bridge.bridge.large_line import LargeLine
from mcp_bridge.jsonrpc import JsonObject

__all__ = ["IncomingLine", "LineChannel", "OutgoingLine", "OversizedLine", "ParsedLine"]


@dataclass(frozen=True, slots=True)
class OversizedLine:
    """A line longer than the limit; its bytes were discarded up to the next newline."""

    size: int


@dataclass(frozen=True, slots=True)
class ParsedLine:
    """A line its channel already decoded into one message; the receiver owns `message`."""

    message: JsonObject


# What a channel receives: a line as read, one already parsed, or one too long to keep.
IncomingLine = bytes | ParsedLine | OversizedLine
# What a channel sends: one message's bytes, or a large message to be encoded as written.
OutgoingLine = bytes | LargeLine


class LineChannel(Protocol):
    """Lines in from the local client, lines out to it.

    `receive()` returns one line (bytes or a ParsedLine), an OversizedLine, or None once
    the client is gone.
    `send()` queues one message (no newline; bytes or a LargeLine) and never blocks the
    event loop; `aclose()` flushes what is queued and releases the channel.
    """

    async def receive(self) -> IncomingLine | None: ...

    def send(self, line: OutgoingLine) -> None: ...

    async def aclose(self) -> None: ...
