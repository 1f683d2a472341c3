"""A shim that reaches a daemon in the moment it stops (its idle exit, `daemon stop`, an
upgrade's retirement): the daemon took the connection, then closed it unanswered. The
shim starts a daemon in its place and serves its client, as if it had come a moment later.

The stopping daemon is a plain Unix socket server: a real daemon does this only within a
window of microseconds between its last accept and closing its listener, which no test
can hit on purpose. Real shim, real daemon after it, a real MCP server."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_bridge.daemon import transport
from mcp_bridge.paths import bridge_paths, private_directory
from mcp_bridge.shim.connection import STOPPING_RETRIES
from tests.fixtures.bridge_process import echo, running_bridge
from tests.fixtures.mcp_servers import ServerProcess, text_of


@contextlib.contextmanager
def daemon_stopping_at(path: Path, *, for_good: bool = True) -> Iterator[list[bytes]]:
    """Listen at `path`; take a connection's hello and drop the connection unanswered, as
    a stopping daemon does. `for_good`: then withdraw the socket file and stop listening,
    as it does next; otherwise go on like that with every connection (no daemon does).
    Yields the hellos taken."""
    private_directory(path.parent)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen()
    taken: list[bytes] = []

    def serve() -> None:
        with contextlib.suppress(OSError):  # the listener closed under accept()
            while True:
                peer, _ = listener.accept()
                with peer:
                    peer.settimeout(30)
                    line = b""
                    while not line.endswith(b"\n") and (chunk := peer.recv(1)):
                        line += chunk
                    taken.append(line)
                    if for_good:
                        path.unlink()
                        listener.close()

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        yield taken
    finally:
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() blocked in its thread
        listener.close()
        server.join(35)


async def test_a_daemon_that_stops_as_the_shim_says_hello_is_replaced(
    sdk_stateful: ServerProcess, bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(transport.TRANSPORT_ENV, "unix")
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
    with daemon_stopping_at(paths.daemon_socket()) as taken:
        async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
            assert "result" in await bridge.initialize()
            assert text_of(await echo(bridge, "after the stop")) == "after the stop"
            assert await bridge.close_stdin_and_wait() == 0
    assert len(taken) == 1
    assert b'"session"' in taken[0]


async def test_a_daemon_that_keeps_closing_unanswered_ends_the_shim_with_its_reason(
    sdk_stateful: ServerProcess, bridge_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No daemon does this; a shim must still not try for ever: a few tries, then the
    reason on stderr and exit 1, as when no daemon can be had."""
    monkeypatch.setenv(transport.TRANSPORT_ENV, "unix")
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
    with daemon_stopping_at(paths.daemon_socket(), for_good=False) as taken:
        async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
            async with asyncio.timeout(30):
                assert await bridge.process.wait() == 1
            assert bridge.process.stderr is not None
            said = (await bridge.process.stderr.read()).decode()
    # (the fixture's `stop_daemon` at the end says hellos of its own)
    assert len([hello for hello in taken if b'"session"' in hello]) == 1 + STOPPING_RETRIES
    assert "The daemon closed the connection before answering" in said
    assert "Traceback" not in said
