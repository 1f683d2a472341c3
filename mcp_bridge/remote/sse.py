"""Server-Sent Events, parsed incrementally (WHATWG HTML, "event stream interpretation").

Pure: bytes in, events out. An event is as large as the remote sends (a 20 MB tool result
is one event) up to `max_event_bytes`: past it the parser stops buffering, drops what it
holds and sets `too_large`, so an endless `data:` line costs the cap, not all memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcp_bridge.remote.headers import is_header_safe

# The longest reconnect delay a server's `retry:` may ask for: a larger one (or one past
# CPython's int-string limit) would leave a request waiting, or kill the reader, for nothing.
MAX_RETRY_MS = 60_000
# 2025-11-25 leaves the reconnect delay to the client unless the server sends `retry`.
DEFAULT_RECONNECT_S = 1.0


@dataclass(frozen=True, slots=True)
class SseEvent:
    data: str
    event: str = "message"
    id: str | None = None


@dataclass(slots=True)
class SseParser:
    """Feed it chunks of the response body; it returns the events each chunk completed.

    `last_event_id` and `retry_ms` keep the stream's state for resumption, as a browser's
    EventSource does.
    """

    last_event_id: str | None = None
    retry_ms: int | None = None
    max_event_bytes: int | None = None  # None: no cap (tests, and callers that bound it)
    too_large: int | None = None  # set once an event passed the cap: the bytes seen of it
    _buffer: bytearray = field(default_factory=bytearray)
    _event_bytes: int = 0  # what the current event's complete lines hold
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _seen_bom: bool = False
    _scanned: int = 0  # the buffer holds no line end before this offset
    _after_cr: bool = False  # the last chunk ended in CR: a leading LF belongs to it

    def reconnect_delay_s(self) -> float:
        return self.retry_ms / 1000 if self.retry_ms is not None else DEFAULT_RECONNECT_S

    def new_stream(self) -> None:
        """Start on a new connection's bytes (a reconnect): what a broken stream left half
        parsed is dropped; `last_event_id` and `retry_ms` stay, as they should."""
        self._buffer = bytearray()
        self._data, self._event, self._event_bytes = [], "", 0
        self._seen_bom = self._after_cr = False
        self._scanned = 0
        self.too_large = None

    def feed(self, chunk: bytes) -> list[SseEvent]:
        """The events `chunk` completed. Once `too_large` is set the stream is useless:
        the rest of this chunk and any later one are ignored until new_stream()."""
        if self.too_large is not None:
            return []
        self._buffer += chunk
        if not self._seen_bom:
            # Only the stream's very first bytes may be a BOM; until three bytes are in we
            # cannot tell, and must not parse a line that a BOM would belong to.
            if len(self._buffer) < len(_BOM) and _BOM.startswith(self._buffer):
                return []
            self._seen_bom = True
            if self._buffer.startswith(_BOM):
                del self._buffer[: len(_BOM)]
        buffer = self._buffer
        if self._after_cr and buffer:
            self._after_cr = False
            if buffer[0] == 0x0A:
                del buffer[:1]  # the LF of a CR LF pair split across chunks
        events: list[SseEvent] = []
        start = 0
        while True:
            # Resume the search where the last one stopped, so a 20 MB line that arrives
            # in 64 KiB chunks is scanned once, not once per chunk.
            end = _line_end(buffer, max(start, self._scanned))
            if end < 0:
                self._scanned = len(buffer)
                break
            event = self._line(buffer, start, end)
            if event is not None:
                events.append(event)
            if self.too_large is not None:
                return self._overflowed(events)
            if buffer[end] == 0x0D:
                # CR LF is one line end. A CR that ends the chunk ends the line now (a CR-only
                # server must not wait for its next event); an LF opening the next chunk is
                # then skipped.
                if end + 1 == len(buffer):
                    self._after_cr = True
                    start = end + 1
                else:
                    start = end + 2 if buffer[end + 1] == 0x0A else end + 1
            else:
                start = end + 1
        if self._is_over(self._event_bytes + len(buffer) - start):
            return self._overflowed(events)
        if start == len(buffer):
            # A fresh buffer rather than `del`: CPython keeps a bytearray's allocation when
            # its front is deleted, so a 20 MB event would stay resident for the stream's life.
            self._buffer = bytearray()
        else:
            del buffer[:start]
        self._scanned = max(0, self._scanned - start)
        return events

    def _line(self, buffer: bytearray, start: int, end: int) -> SseEvent | None:
        """Interpret the line buffer[start:end]. Only the field's value is decoded, straight
        from the buffer, so a 20 MB data line exists once as bytes and once as text."""
        if start == end:
            return self._dispatch()
        if buffer[start] == 0x3A:
            return None  # a comment (":"): servers send these as keep-alives
        colon = buffer.find(b":", start, end)
        name_end = end if colon < 0 else colon
        value_start = end if colon < 0 else colon + 1
        if value_start < end and buffer[value_start] == 0x20:
            value_start += 1  # one leading space is part of the syntax, not the value
        name = _decode(buffer, start, name_end)
        if name not in _FIELDS:
            return None
        value = _decode(buffer, value_start, end)
        if name == "data":
            self._data.append(value)
            self._event_bytes += end - start  # the line as sent, as a partial one counts
            self._is_over(self._event_bytes)
        elif name == "event":
            self._event = value
        elif name == "id":
            # WHATWG ignores an id with NUL; one with any control character could not go
            # back in the Last-Event-ID header either.
            if is_header_safe(value):
                self.last_event_id = value
        elif value.isascii() and value.isdigit():  # retry; int() refuses "²"
            # A longer string is only a larger number; int() of 5,000 digits would raise.
            self.retry_ms = min(int(value) if len(value) <= 9 else MAX_RETRY_MS, MAX_RETRY_MS)
        return None

    def _is_over(self, size: int) -> bool:
        if self.max_event_bytes is not None and size > self.max_event_bytes:
            self.too_large = size
        return self.too_large is not None

    def _overflowed(self, events: list[SseEvent]) -> list[SseEvent]:
        """Drop the oversized event's bytes at once: memory returns to what it was."""
        self._buffer, self._data, self._event_bytes, self._scanned = bytearray(), [], 0, 0
        return events

    def _dispatch(self) -> SseEvent | None:
        lines, event = self._data, self._event
        self._data, self._event, self._event_bytes = [], "", 0
        data = "\n".join(lines)  # one line (the usual case) is returned as is, not copied
        if not data:
            # WHATWG: an empty data buffer dispatches nothing. That is a 2025-11-25 priming
            # event (an id with empty data): it only sets `last_event_id`.
            return None
        return SseEvent(data=data, event=event or "message", id=self.last_event_id)


_BOM = b"\xef\xbb\xbf"
_FIELDS = frozenset({"data", "event", "id", "retry"})


def _decode(buffer: bytearray, start: int, end: int) -> str:
    with memoryview(buffer) as view, view[start:end] as piece:
        return str(piece, "utf-8", errors="replace")


def _line_end(buffer: bytearray, start: int) -> int:
    lf = buffer.find(b"\n", start)
    cr = buffer.find(b"\r", start, lf if lf >= 0 else len(buffer))
    return cr if cr >= 0 else lf
