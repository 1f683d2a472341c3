"""Large messages go to the client as LargeLine: JSON text encoded piece by piece as it is
written, never held as bytes besides (the memory target: peak <= 2x the payload)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge import jsonrpc
from mcp_bridge.bridge import large_line as channel_module
from mcp_bridge.bridge.large_line import LargeLine, encode_line
from mcp_bridge.bridge.stdio import StdioChannel
from mcp_bridge.daemon.socket_channel import SocketChannel
from mcp_bridge.process_stdio import Wire

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@contextlib.contextmanager
def small_pieces(chars: int) -> Iterator[None]:
    saved = channel_module.LARGE_LINE_CHARS, channel_module.SLICE_CHARS
    channel_module.LARGE_LINE_CHARS = channel_module.SLICE_CHARS = chars
    try:
        yield
    finally:
        channel_module.LARGE_LINE_CHARS, channel_module.SLICE_CHARS = saved


@given(json_values, st.integers(min_value=1, max_value=9))
def test_the_pieces_make_up_exactly_what_encode_makes(value: object, chars: int) -> None:
    message = {"jsonrpc": "2.0", "id": 3, "result": {"value": value}}
    with small_pieces(chars):
        line = encode_line(message)
    whole = line if isinstance(line, bytes) else b"".join(line.pieces())
    assert whole == jsonrpc.encode(message)
    assert json.loads(whole) == message


def test_small_messages_stay_bytes_and_large_ones_carry_their_reply_id() -> None:
    small = jsonrpc.result_response(1, {"text": "hi"})
    assert encode_line(small) == jsonrpc.encode(small)
    big_text = "é" * channel_module.LARGE_LINE_CHARS  # non-ASCII across a piece boundary
    reply = encode_line(jsonrpc.result_response("r", {"text": big_text}))
    assert isinstance(reply, LargeLine)
    assert reply.reply_id == "r"
    assert json.loads(b"".join(reply.pieces()))["result"]["text"] == big_text
    note = encode_line(jsonrpc.notification("n", {"text": big_text}))
    assert isinstance(note, LargeLine)
    assert note.reply_id is None


@pytest.mark.parametrize("bad", [math.nan, "\ud800" * 3])
def test_what_cannot_be_written_fails_before_anything_is_written(bad: object) -> None:
    with small_pieces(4), pytest.raises(ValueError, match=r"JSON|surrogate"):
        encode_line(jsonrpc.result_response(1, {"value": bad, "pad": "x" * 10}))


async def test_stdio_writes_a_large_line_whole_and_in_order() -> None:
    out = io.BytesIO()
    wire = Wire(reader=io.BytesIO(b""), writer=out)
    channel = StdioChannel(wire)
    with small_pieces(5):
        large = encode_line(jsonrpc.result_response(1, {"text": "abcdefghijklmnop"}))
    assert isinstance(large, LargeLine)
    channel.send(b'{"before":1}')
    channel.send(large)
    channel.send(b'{"after":1}')
    await channel.aclose()
    lines = out.getvalue().split(b"\n")
    assert lines[0] == b'{"before":1}'
    assert json.loads(lines[1])["result"]["text"] == "abcdefghijklmnop"
    assert lines[2:] == [b'{"after":1}', b""]


async def test_a_socket_channel_keeps_order_behind_a_large_line() -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            await received.put(line)
        writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0, limit=2**24)
    port = server.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
    channel = SocketChannel(reader, writer, max_line_bytes=2**24)
    text = "y" * (3 * channel_module.LARGE_LINE_CHARS + 17)
    large = encode_line(jsonrpc.result_response(2, {"text": text}))
    assert isinstance(large, LargeLine)
    channel.send(b'{"first":1}')
    channel.send(large)
    channel.send(b'{"third":1}')  # written after the large one, not between its pieces
    await channel.aclose()
    got = [await asyncio.wait_for(received.get(), 10) for _ in range(3)]
    assert got[0] == b'{"first":1}\n'
    assert json.loads(got[1])["result"]["text"] == text
    assert got[2] == b'{"third":1}\n'
    server.close()
    await server.wait_closed()
