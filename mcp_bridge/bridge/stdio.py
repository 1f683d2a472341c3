"""The stdio side of the bridge: newline-delimited JSON-RPC on stdin and stdout
(claimed for the protocol by `process_stdio.claim_stdio()`).

Blocking reads and writes run in two threads, so a client that is slow to read a 20 MB
result stalls only the writer thread, never the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from mcp_bridge.bridge.channel import OutgoingLine, OversizedLine
from mcp_bridge.bridge.large_line import LargeLine
from mcp_bridge.process_stdio import Wire, discard_rest_of_line

log = logging.getLogger(__name__)

DEFAULT_MAX_LINE_BYTES = 64 * 1024 * 1024


class StdioChannel:
    """A LineChannel (channel.py): lines in from `reader`, lines out to `writer`.

    `receive()` returns one line without its newline, an OversizedLine, or None at end of
    input. `send()` queues one message (no newline) and never blocks the loop.
    """

    def __init__(self, wire: Wire, *, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._wire = wire
        self._max_line_bytes = max_line_bytes
        self._loop = asyncio.get_running_loop()
        self._incoming: asyncio.Queue[bytes | OversizedLine | None] = asyncio.Queue()
        self._outgoing: list[OutgoingLine | None] = []
        self._outgoing_ready = threading.Condition()
        self._drained = asyncio.Event()
        self._drained.set()
        self._reader = threading.Thread(target=self._read_lines, name="stdin", daemon=True)
        self._writer = threading.Thread(target=self._write_lines, name="stdout", daemon=True)
        self._reader.start()
        self._writer.start()

    async def receive(self) -> bytes | OversizedLine | None:
        return await self._incoming.get()

    def send(self, line: OutgoingLine) -> None:
        self._drained.clear()
        with self._outgoing_ready:
            self._outgoing.append(line)
            self._outgoing_ready.notify()

    async def drain(self) -> None:
        """Wait until every queued line has been written."""
        await self._drained.wait()

    async def aclose(self) -> None:
        """Flush what is queued, then stop the writer (the reader stops at end of input)."""
        with self._outgoing_ready:
            self._outgoing.append(None)
            self._outgoing_ready.notify()
        await asyncio.to_thread(self._writer.join, 5.0)

    def _read_lines(self) -> None:
        reader, limit = self._wire.reader, self._max_line_bytes
        try:
            while True:
                line = reader.readline(limit + 1)
                if not line:
                    break
                if len(line) > limit and not line.endswith(b"\n"):
                    self._put(OversizedLine(size=len(line) + discard_rest_of_line(reader)))
                    continue
                self._put(line.rstrip(b"\r\n"))
        except (OSError, ValueError) as exc:  # the host closed or broke the pipe
            log.info("stdin closed: %s", exc)
        self._put(None)

    def _put(self, item: bytes | OversizedLine | None) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is already closed at shutdown
            self._loop.call_soon_threadsafe(self._incoming.put_nowait, item)

    def _write_lines(self) -> None:
        writer = self._wire.writer
        broken = False
        while True:
            with self._outgoing_ready:
                while not self._outgoing:
                    self._outgoing_ready.wait()
                batch, self._outgoing = self._outgoing, []
            for line in batch:
                if line is None:
                    return
                if broken:
                    continue
                try:
                    if isinstance(line, LargeLine):
                        for piece in line.pieces():
                            writer.write(piece)
                    else:
                        writer.write(line)  # not `line + b"\n"`: that copies a 20 MB message
                    writer.write(b"\n")
                    writer.flush()
                except (OSError, ValueError) as exc:
                    log.info("stdout closed: %s", exc)
                    broken = True
            with self._outgoing_ready:
                if not self._outgoing:
                    with contextlib.suppress(RuntimeError):
                        self._loop.call_soon_threadsafe(self._drained.set)
