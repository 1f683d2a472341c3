"""The daemon's lines on their way to the client, passed on as they arrive. Pure: bytes
in, bytes out; the relay does the reading and writing.

A line is not held whole before it is written: a 20 MB tool result would cost the shim
twice that at the peak (the socket's buffer, then the line read from it), in every host's
shim at once. Only the start of a line is held, until the flight book can tell whether the
client must see it (shim/flights.py): in the shape the daemon writes replies in, the first
bytes tell; a line in another shape is held whole up to the size the book parses, and
passed on unread beyond it.
"""

from __future__ import annotations

from mcp_bridge.shim.flights import PARSE_LIMIT_BYTES, Flights

__all__ = ["DaemonLines"]


class DaemonLines:
    """Feed it the daemon's bytes in chunks of any size; write what it returns, in order."""

    def __init__(self, flights: Flights) -> None:
        self._flights = flights
        self._head = bytearray()  # the start of a line not decided yet
        self._passing: bool | None = None  # the line under way: written (True), dropped

    @property
    def mid_line(self) -> bool:
        """Part of a line has gone to the client and the rest has not: nothing else may be
        written to it now."""
        return self._passing is True

    def feed(self, data: bytes) -> list[bytes]:
        """The bytes to write to the client for `data`, the daemon's next bytes."""
        out: list[bytes] = []
        start = 0
        while start < len(data):
            newline = data.find(b"\n", start)
            stop = len(data) if newline < 0 else newline + 1
            if self._passing is None and not self._head and newline >= 0:
                self._whole_line(data[start:stop], out)  # in one piece: the common case
            elif self._passing is None:
                self._head += data[start:stop]
                self._decide(out, ended=newline >= 0)
            elif self._passing:
                out.append(data[start:stop])
                if newline >= 0:
                    self._flights.line_ended()
            if newline >= 0:
                self._passing = None
            start = stop
        return out

    def cut(self) -> list[bytes]:
        """The daemon went away: what ends the line under way, if one was half written
        (the client then reads one malformed line, not the error replies run into it)."""
        self._head.clear()
        passing, self._passing = self._passing, None
        return [b"\n"] if passing else []

    def _decide(self, out: list[bytes], *, ended: bool) -> None:
        head = self._head
        if ended:
            line = bytes(head)
            head.clear()
            self._whole_line(line, out)
            return
        passing = self._flights.from_daemon_head(head)
        if passing is None and len(head) > PARSE_LIMIT_BYTES:
            passing = True  # not a reply the book could read: passed on unread
        if passing is not None:
            self._passing = passing
            if passing:
                out.append(bytes(head))
            head.clear()

    def _whole_line(self, line: bytes, out: list[bytes]) -> None:
        if self._flights.from_daemon(line):
            out.append(line)
