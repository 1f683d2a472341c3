"""The shared aiohttp session: how it treats a pooled connection the server is about to close."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from mcp_bridge import http_client

REPLY = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


@contextlib.asynccontextmanager
async def closing_idle_connections(idle_limit_s: float) -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP/1.1 server that answers every request with `{}`, except one arriving on a
    connection idle for `idle_limit_s` or more: that connection is closed unanswered. It is
    what a client meets, without a timing race, when its request crosses the server's
    keep-alive close on the wire (uvicorn, which the MCP SDKs' servers run on, closes
    connections idle for 5 s). Yields the URL and what became of each request."""
    outcomes: list[str] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        last_answer = time.monotonic()
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = next(
                    (
                        int(line.split(b":", 1)[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                if time.monotonic() - last_answer >= idle_limit_s:
                    outcomes.append("dropped")
                    return
                writer.write(REPLY)
                await writer.drain()
                outcomes.append("answered")
                last_answer = time.monotonic()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        yield f"http://127.0.0.1:{port}/mcp", outcomes


async def test_a_connection_idle_for_as_long_as_a_server_keeps_one_is_not_reused() -> None:
    """A POST is not retried after the connection dies (RFC 9112 §9.3.1: it may have run),
    so a tool call sent on a connection the server is closing would fail. The pool must let
    go of connections before common servers do."""
    uvicorn_idle_limit_s = 5.0  # uvicorn's default timeout_keep_alive
    async with (
        closing_idle_connections(uvicorn_idle_limit_s) as (url, outcomes),
        http_client.client_session() as session,
    ):
        async with session.post(url, data=b"{}") as first:
            assert await first.json() == {}
        await asyncio.sleep(uvicorn_idle_limit_s + 0.1)
        async with session.post(url, data=b"{}") as second:
            assert await second.json() == {}
    assert outcomes == ["answered", "answered"]
