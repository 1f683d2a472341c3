"""The stdio channel over real pipes: framing, the size limit, end of input, ordering."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from mcp_bridge.bridge.channel import OversizedLine
from mcp_bridge.bridge.stdio import StdioChannel
from mcp_bridge.process_stdio import Wire


@dataclass
class Pipes:
    """A Wire, the fd that feeds its input, and the fd that reads its output."""

    wire: Wire
    feed_fd: int
    output_fd: int
    feed_open: bool = True

    def feed(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self.feed_fd, view) :]

    def end_input(self) -> None:
        if self.feed_open:
            self.feed_open = False
            os.close(self.feed_fd)

    def read_output(self) -> bytes:
        data = b""
        while chunk := os.read(self.output_fd, 65536):
            data += chunk
        return data


@pytest.fixture
def pipes() -> Iterator[Pipes]:
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    wire = Wire(reader=os.fdopen(in_read, "rb"), writer=os.fdopen(out_write, "wb"))
    pair = Pipes(wire, in_write, out_read)
    yield pair
    # End the input first: the channel's reader thread holds the reader's lock inside
    # readline() until it sees end of file, so closing the reader before would wait forever.
    pair.end_input()
    wire.writer.close()
    os.close(out_read)
    wire.reader.close()


async def test_lines_arrive_without_their_newlines_then_end(pipes: Pipes) -> None:
    channel = StdioChannel(pipes.wire, max_line_bytes=1024)
    pipes.feed(b'{"a":1}\r\n\n{"b":2}')
    pipes.end_input()
    received = [await channel.receive() for _ in range(4)]
    assert received == [b'{"a":1}', b"", b'{"b":2}', None]
    await channel.aclose()


async def test_oversized_line_is_reported_and_the_next_line_still_arrives(pipes: Pipes) -> None:
    channel = StdioChannel(pipes.wire, max_line_bytes=100)
    await asyncio.to_thread(pipes.feed, b"x" * 5000 + b"\n" + b'{"ok":true}\n')
    first = await channel.receive()
    assert isinstance(first, OversizedLine)
    assert first.size == 5001
    assert await channel.receive() == b'{"ok":true}'
    await channel.aclose()


async def test_sent_lines_keep_their_order_and_get_one_newline_each(pipes: Pipes) -> None:
    channel = StdioChannel(pipes.wire)
    for n in range(200):
        channel.send(b'{"n":%d}' % n)
    await channel.drain()
    await channel.aclose()
    pipes.wire.writer.close()
    data = await asyncio.to_thread(pipes.read_output)
    assert data.split(b"\n") == [b'{"n":%d}' % n for n in range(200)] + [b""]


async def test_a_large_message_passes_whole(pipes: Pipes) -> None:
    channel = StdioChannel(pipes.wire, max_line_bytes=32 * 1024 * 1024)
    big = b'{"data":"' + b"y" * (20 * 1024 * 1024) + b'"}'

    def write_all() -> None:
        pipes.feed(big + b"\n")
        pipes.end_input()

    writer = asyncio.create_task(asyncio.to_thread(write_all))
    assert await channel.receive() == big
    await writer
    assert await channel.receive() is None
    await channel.aclose()
