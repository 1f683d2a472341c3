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

    def feed(self, chunk: bytes) -> list[SseEvent]:
        self._buffer += chunk
        if not self._seen_bom and len(self._buffer) >= 3:
            self._seen_bom = True
            if self._buffer.startswith(b"\xef\xbb\xbf"):
                del self._buffer[:3]
        events: list[SseEvent] = []
        start = 0
        buffer = self._buffer
        while True:
            # Resume the search where the last one stopped, so a 20 MB line that arrives
            # in 64 KiB chunks is scanned once, not once per chunk.
            end = _line_end(buffer, max(start, self._scanned))
            if end < 0:
                self._scanned = len(buffer)
                break
            line = bytes(buffer[start:end])
            # A CR LF pair is one line ending; a lone CR at the very end of the chunk may be
            # the first half of one, so wait for more input before deciding.
            if buffer[end] == 0x0D:
                if end + 1 == len(buffer):
                    self._scanned = end
                    break
                start = end + 2 if buffer[end + 1] == 0x0A else end + 1
            else:
                start = end + 1
            event = self._line(line.decode("utf-8", errors="replace"))
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
        elif name == "retry" and value.isdigit():
            self.retry_ms = int(value)
        return None

    def _dispatch(self) -> SseEvent | None:
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None  # e.g. a priming event: an id with empty data sets state only
        return SseEvent(data="\n".join(data), event=event or "message", id=self.last_event_id)


def _line_end(buffer: bytearray, start: int) -> int:
    lf = buffer.find(b"\n", start)
    cr = buffer.find(b"\r", start, lf if lf >= 0 else len(buffer))
    return cr if cr >= 0 else lf
