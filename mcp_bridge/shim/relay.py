"""The shim's relay: the client's stdio on one side, a daemon session on the other.

Two threads, no event loop (asyncio alone costs more start-up time than the rest of the
shim): one reads stdin and sends to the daemon, the other reads the daemon and writes
stdout. When the daemon goes away while the client is still there (a crash, SIGKILL, an
upgrade), the requests in flight get an error at once, the daemon is started again, the
client's handshake is replayed to it, and the relay carries on; the client sees one
failed call at most. The host never has to restart us: it would not (hosts.md).
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
import time
from typing import BinaryIO

from mcp_bridge import jsonrpc
from mcp_bridge.daemon import hello
from mcp_bridge.errors import ConfigError
from mcp_bridge.paths import BridgePaths
from mcp_bridge.process_stdio import Wire, discard_rest_of_line
from mcp_bridge.shim.connection import DaemonUnavailable, connect_to_daemon, read_line
from mcp_bridge.shim.flights import Flights

__all__ = ["ShimRelay"]

RECONNECT_BACKOFF_S = (0.1, 5.0)
DAEMON_LOST = "mcp-bridge's daemon stopped while this request was in flight; retry it"


class ShimRelay:
    """Lifecycle: `ShimRelay.connect(...)` (the daemon accepted the profile), then
    `run(wire)` once, with the stdio claimed after the connect succeeded."""

    def __init__(
        self,
        profile: dict[str, object],
        paths: BridgePaths,
        *,
        max_line_bytes: int,
        connection: tuple[socket.socket, BinaryIO],
    ) -> None:
        self._profile = profile
        self._paths = paths
        self._max_line_bytes = max_line_bytes
        self._flights = Flights()
        self._lock = threading.Lock()  # guards the socket, the flights and stdout
        self._reconnected = threading.Condition(self._lock)
        self._sock: socket.socket | None = connection[0]
        self._from_daemon = connection[1]
        self._epoch = 0  # bumped at every (re)connection
        self._stdin_done = False
        self._wire: Wire | None = None

    @classmethod
    def connect(
        cls, profile: dict[str, object], paths: BridgePaths, *, max_line_bytes: int
    ) -> ShimRelay:
        """Reach the daemon (starting it if needed) and open a session for `profile`.
        Raises ConfigError when the daemon refuses the profile, DaemonUnavailable when
        there is no daemon to be had."""
        try:
            connection = _open_session(paths, profile)
        except hello.HelloError as exc:
            error = ConfigError if exc.is_config else DaemonUnavailable
            raise error(exc.what, next_step=exc.next_step) from exc
        return cls(profile, paths, max_line_bytes=max_line_bytes, connection=connection)

    def run(self, wire: Wire) -> int:
        """Relay until the client closes stdin and the daemon has finished answering;
        the exit code."""
        self._wire = wire
        self._install_sigterm_exit()
        threading.Thread(target=self._pump_to_daemon, name="stdin", daemon=True).start()
        self._pump_to_client(self._from_daemon)
        return 0

    def _install_sigterm_exit(self) -> None:
        # Hosts stop servers with SIGTERM: exit with status 0 rather than die by the
        # signal. The socket closing at exit tells the daemon, which ends the session.
        def leave(signum: int, frame: object) -> None:
            raise SystemExit(0)

        signal.signal(signal.SIGTERM, leave)

    # -- connecting -------------------------------------------------------------------

    def _open(self) -> tuple[socket.socket, BinaryIO]:
        return _open_session(self._paths, self._profile)

    def _reopen(self) -> BinaryIO:
        """Connect to a (new) daemon, replay the handshake; retried until it works."""
        delay_s = RECONNECT_BACKOFF_S[0]
        while True:
            try:
                sock, from_daemon = self._open()
                with self._lock:
                    for line in self._flights.replay():
                        sock.sendall(line + b"\n")
                    self._sock = sock
                    self._epoch += 1
                    self._reconnected.notify_all()
                return from_daemon
            except (OSError, DaemonUnavailable, hello.HelloError) as exc:
                _complain(f"cannot reach the daemon again ({exc}); retrying in {delay_s:.1f} s")
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, RECONNECT_BACKOFF_S[1])

    # -- client -> daemon ---------------------------------------------------------------

    def _pump_to_daemon(self) -> None:
        assert self._wire is not None
        reader = self._wire.reader
        try:
            while line := reader.readline(self._max_line_bytes + 1):
                if len(line) > self._max_line_bytes and not line.endswith(b"\n"):
                    self._refuse_oversized(len(line) + discard_rest_of_line(reader))
                    continue
                self._send(line.rstrip(b"\r\n"))
        except (OSError, ValueError):
            pass  # the host closed or broke the pipe: the same as end of input
        with self._lock:
            self._stdin_done = True
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_WR)  # the daemon ends the session

    def _send(self, line: bytes) -> None:
        # Recorded and sent under one lock, so the other thread's `lost()` sees the
        # request either not yet in flight or in flight and sent, never in between.
        with self._lock:
            while True:
                key = self._flights.from_client(line)
                sock = self._sock
                assert sock is not None
                try:
                    sock.sendall(line + b"\n")
                    return
                except OSError:
                    # The daemon is gone and the line never reached it: the other thread
                    # reconnects, and the line goes to the new daemon instead.
                    self._flights.unsent(key)
                    epoch = self._epoch
                    while self._epoch == epoch:
                        self._reconnected.wait()

    def _refuse_oversized(self, size: int) -> None:
        error = jsonrpc.error_response(
            None,
            jsonrpc.INVALID_REQUEST,
            f"Message of {size} bytes is over the bridge's limit and was dropped; "
            "raise it with --max-message-bytes",
        )
        with self._lock:
            self._write([jsonrpc.encode(error)])

    # -- daemon -> client ---------------------------------------------------------------

    def _pump_to_client(self, from_daemon: BinaryIO) -> None:
        while True:
            try:
                line = from_daemon.readline()
            except OSError:
                line = b""
            if not line:
                with self._lock:
                    if self._stdin_done:
                        return  # the session ended because the client left
                    self._write(self._flights.lost(DAEMON_LOST))
                _complain("the daemon went away; starting it again")
                from_daemon = self._reopen()
                continue
            message = line.rstrip(b"\n")
            with self._lock:
                if self._flights.from_daemon(message):
                    self._write([message])

    def _write(self, lines: list[bytes]) -> None:
        assert self._wire is not None
        writer = self._wire.writer
        try:
            for line in lines:
                writer.write(line)
                writer.write(b"\n")
            writer.flush()
        except (OSError, ValueError):
            pass  # the client is gone; stdin's end will follow


def _open_session(paths: BridgePaths, profile: dict[str, object]) -> tuple[socket.socket, BinaryIO]:
    sock = connect_to_daemon(paths)
    try:
        sock.sendall(hello.encode({"session": profile}) + b"\n")
        hello.parse_reply(read_line(sock))
    except BaseException:
        sock.close()
        raise
    return sock, sock.makefile("rb")


def _complain(text: str) -> None:
    sys.stderr.write(f"mcp-bridge: {text}\n")
    sys.stderr.flush()
