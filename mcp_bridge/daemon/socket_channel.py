"""SocketChannel: the LineChannel (bridge/channel.py) of one shim's connection."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from mcp_bridge.bridge.channel import OutgoingLine, OversizedLine
from mcp_bridge.bridge.large_line import LargeLine

__all__ = ["SocketChannel"]

log = logging.getLogger(__name__)


class SocketChannel:
    """Newline-delimited messages over an asyncio stream pair. The reader's own limit
    (set where the server is started) bounds what is buffered; `max_line_bytes` is this
    client's limit, at most that."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, max_line_bytes: int
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._max_line_bytes = max_line_bytes
        # Lines behind a LargeLine being written, in order; the writing task while one is.
        self._queued: collections.deque[OutgoingLine] = collections.deque()
        self._writing: asyncio.Task[None] | None = None

    async def receive(self) -> bytes | OversizedLine | None:
        try:
            line = await self._reader.readuntil(b"\n")
        except asyncio.IncompleteReadError:
            return None  # the shim is gone (its client closed stdin, or it was killed)
        except asyncio.LimitOverrunError:
            return OversizedLine(size=await self._discard_line())
        except ConnectionError as exc:
            log.info("shim connection broke: %s", exc)
            return None
        if len(line) - 1 > self._max_line_bytes:
            return OversizedLine(size=len(line) - 1)
        return line[:-1]

    def send(self, line: OutgoingLine) -> None:
        if self._writer.is_closing():
            return  # the shim left; what it would have got has nowhere to go
        if isinstance(line, bytes) and self._writing is None:
            self._writer.writelines((line, b"\n"))  # no `line + b"\n"`: that copies it
            return
        self._queued.append(line)
        if self._writing is None:
            self._writing = asyncio.create_task(self._write_queued())

    async def _write_queued(self) -> None:
        """Write what is queued; a LargeLine piece by piece, each let out to the socket
        before the next is encoded (the transport would otherwise buffer a copy of it)."""
        try:
            while self._queued:
                line = self._queued.popleft()
                if isinstance(line, LargeLine):
                    for piece in line.pieces():
                        self._writer.write(piece)
                        await self._writer.drain()
                    self._writer.write(b"\n")
                else:
                    self._writer.writelines((line, b"\n"))
        except ConnectionError as exc:
            log.info("shim connection broke while a large message was written: %s", exc)
            self._queued.clear()
        finally:
            self._writing = None

    async def aclose(self) -> None:
        if self._writing is not None:
            await self._writing
        with contextlib.suppress(ConnectionError):
            await self._writer.drain()
        self._writer.close()
        with contextlib.suppress(ConnectionError):
            await self._writer.wait_closed()

    async def _discard_line(self) -> int:
        """Drop an over-long line up to its newline; its size."""
        size = 0
        while True:
            try:
                return size + len(await self._reader.readuntil(b"\n")) - 1
            except asyncio.LimitOverrunError as exc:
                size += len(await self._reader.readexactly(exc.consumed))
            except asyncio.IncompleteReadError as exc:
                return size + len(exc.partial)
