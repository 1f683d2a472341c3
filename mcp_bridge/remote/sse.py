"""Server-Sent Events, parsed incrementally (WHATWG HTML, "event stream interpretation").

Pure: bytes in, events out. No size cap of its own: an event is as large as the remote
sends (a 20 MB tool result is one event); the caller bounds memory if it needs to.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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
    _buffer: bytearray = field(default_factory=bytearray)
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _seen_bom: bool = False
    _scanned: int = 0  # the buffer holds no line end before this offset
    _after_cr: bool = False  # the last chunk ended in CR: a leading LF belongs to it

    def feed(self, chunk: bytes) -> list[SseEvent]:
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
            # Decoded straight from the buffer: a 20 MB data line is not copied to bytes first.
            with memoryview(buffer) as view, view[start:end] as piece:
                line = str(piece, "utf-8", errors="replace")
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
            event = self._line(line)
            if event is not None:
                events.append(event)
        del buffer[:start]
        self._scanned = max(0, self._scanned - start)
        return events

    def _line(self, line: str) -> SseEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: servers send these as keep-alives
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            if "\0" not in value:
                self.last_event_id = value
        elif name == "retry" and value.isascii() and value.isdigit():  # int() refuses "²"
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        lines, event = self._data, self._event
        self._data, self._event = [], ""
        data = "\n".join(lines)  # one line (the usual case) is returned as is, not copied
        if not data:
            # WHATWG: an empty data buffer dispatches nothing. That is a 2025-11-25 priming
            # event (an id with empty data): it only sets `last_event_id`.
            return None
        return SseEvent(data=data, event=event or "message", id=self.last_event_id)


_BOM = b"\xef\xbb\xbf"


def _line_end(buffer: bytearray, start: int) -> int:
    lf = buffer.find(b"\n", start)
    cr = buffer.find(b"\r", start, lf if lf >= 0 else len(buffer))
    return cr if cr >= 0 else lf
