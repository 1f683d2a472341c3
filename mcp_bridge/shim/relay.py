"""The shim's relay: the client's stdio on one side, a daemon session on the other.

Two threads, no event loop (asyncio alone costs more start-up time than the rest of the
shim). The stdin thread starts at once: what the cache can answer (`initialize`,
`server/discover`, `tools/list`, `ping`; engine/cached_front.py) is answered before the
daemon is even reached, and every line also goes on to the daemon, whose duplicate
answers are dropped. The main thread reaches (or starts) the daemon, then passes its bytes
on to stdout as they come (shim/daemon_lines.py: a large line is never held whole); a line
of the shim's own waits for the end of one half written.

When the daemon goes away while the client is still there (a crash, SIGKILL, an upgrade),
the requests in flight get an error at once, the daemon is started again, the client's
handshake is replayed to it, and the relay carries on; the client sees one failed call at
most. The host never has to restart us, and would not.
"""

from __future__ import annotations

import contextlib
import signal
import socket
import sys
import threading
import time

from mcp_bridge import jsonrpc
from mcp_bridge.daemon import hello
from mcp_bridge.engine.cached_front import CachedFront
from mcp_bridge.paths import BridgePaths
from mcp_bridge.process_stdio import Wire, discard_rest_of_line
from mcp_bridge.shim.connection import DaemonUnavailable, open_current_daemon
from mcp_bridge.shim.daemon_lines import DaemonLines
from mcp_bridge.shim.flights import Flights

__all__ = ["EXIT_CONFIG", "EXIT_NO_DAEMON", "ShimRelay"]

EXIT_CONFIG = 2  # the daemon refused the server profile: a flag to fix
EXIT_NO_DAEMON = 1
RECONNECT_BACKOFF_S = (0.1, 5.0)
DAEMON_LOST = "mcp-bridge's daemon stopped while this request was in flight; retry it"
# What one read from the daemon takes at most (below malloc's mmap threshold, so a small
# message costs no mmap and munmap).
READ_CHUNK_BYTES = 64 * 1024


class ShimRelay:
    """One client's relay; `run()` once. `front`: the cache-answering front for this
    server (None: answer nothing locally)."""

    def __init__(
        self,
        profile: dict[str, object],
        paths: BridgePaths,
        wire: Wire,
        *,
        max_line_bytes: int,
        front: CachedFront | None = None,
    ) -> None:
        self._profile = profile
        self._paths = paths
        self._wire = wire
        self._max_line_bytes = max_line_bytes
        self._front = front
        self._flights = Flights()
        self._from_daemon = DaemonLines(self._flights)
        self._lock = threading.Lock()  # guards the socket, the flights and stdout
        self._reconnected = threading.Condition(self._lock)
        self._line_ended = threading.Condition(self._lock)  # the daemon's line, on stdout
        self._sock: socket.socket | None = None
        self._epoch = 0  # bumped at every (re)connection
        self._stdin_done = False

    def run(self) -> int:
        """Relay until the client closes stdin and the daemon has finished answering.
        Returns the exit code: EXIT_CONFIG when the daemon refused the profile (said on
        stderr), EXIT_NO_DAEMON when no daemon could be had."""
        _exit_zero_on_sigterm()
        threading.Thread(target=self._pump_to_daemon, name="stdin", daemon=True).start()
        try:
            sock = self._connect_first()
        except hello.HelloError as exc:
            _complain(str(exc))
            return EXIT_CONFIG if exc.is_config else EXIT_NO_DAEMON
        except DaemonUnavailable as exc:
            _complain(str(exc))
            return EXIT_NO_DAEMON
        self._pump_to_client(sock)
        return 0

    # -- connecting -------------------------------------------------------------------

    def _connect_first(self) -> socket.socket:
        sock = _open_session(self._paths, self._profile)
        self._connected(sock)
        return sock

    def _connected(self, sock: socket.socket) -> None:
        with self._lock:
            for line in self._flights.replay() if self._epoch else ():
                sock.sendall(line + b"\n")
            self._sock = sock
            self._epoch += 1
            self._reconnected.notify_all()
            if self._stdin_done:  # the client left before the daemon was reached
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_WR)

    def _reconnect(self) -> socket.socket:
        """Connect to a (new) daemon and replay the handshake; retried until it works."""
        delay_s = RECONNECT_BACKOFF_S[0]
        while True:
            try:
                sock = _open_session(self._paths, self._profile)
                self._connected(sock)
                return sock
            except (OSError, DaemonUnavailable, hello.HelloError) as exc:
                _complain(f"cannot reach the daemon again ({exc}); retrying in {delay_s:.1f} s")
                time.sleep(delay_s)
                delay_s = min(delay_s * 2, RECONNECT_BACKOFF_S[1])

    # -- client -> daemon ---------------------------------------------------------------

    def _pump_to_daemon(self) -> None:
        reader = self._wire.reader
        try:
            while line := reader.readline(self._max_line_bytes + 1):
                if len(line) > self._max_line_bytes and not line.endswith(b"\n"):
                    self._refuse_oversized(len(line) + discard_rest_of_line(reader))
                    continue
                self._send(_framed(line))
        except (OSError, ValueError):
            pass  # the host closed or broke the pipe: the same as end of input
        with self._lock:
            self._stdin_done = True
            if self._sock is not None:
                with contextlib.suppress(OSError):
                    self._sock.shutdown(socket.SHUT_WR)  # the daemon ends the session

    def _send(self, line: bytes) -> None:
        answered = self._answer_from_cache(line)
        # Recorded and sent under one lock, so the other thread's `lost()` sees the
        # request either not yet in flight or in flight and sent, never in between.
        with self._lock:
            while True:
                key = self._flights.from_client(line)
                if answered is not None:
                    self._flights.answered_here(answered)
                while self._sock is None:  # the first connection is still being made
                    self._reconnected.wait()
                try:
                    self._sock.sendall(line)
                    return
                except OSError:
                    # The daemon is gone and the line never reached it: the other thread
                    # reconnects, and the line goes to the new daemon instead.
                    self._flights.unsent(key)
                    epoch = self._epoch
                    while self._epoch == epoch:
                        self._reconnected.wait()

    def _answer_from_cache(self, line: bytes) -> jsonrpc.RequestId | None:
        """Answer `line` from the cache when the front can; the id it answered."""
        front = self._front
        if front is None or front.is_transparent:
            return None
        try:
            message = jsonrpc.decode(line)
        except jsonrpc.InvalidMessage:
            return None  # the daemon answers it
        if not isinstance(message, dict):
            front.is_transparent = True  # a batch: the daemon sorts it out
            return None
        step = front.from_local(message)
        if not step.to_local:
            return None
        with self._lock:
            self._write_lines([jsonrpc.encode(answer) for answer in step.to_local])
        request_id = message["id"]
        assert isinstance(request_id, str | int)
        return request_id

    def _refuse_oversized(self, size: int) -> None:
        error = jsonrpc.error_response(
            None,
            jsonrpc.INVALID_REQUEST,
            f"Message of {size} bytes is over the bridge's limit and was dropped; "
            "raise it with --max-message-bytes",
        )
        with self._lock:
            self._write_lines([jsonrpc.encode(error)])

    # -- daemon -> client ---------------------------------------------------------------

    def _pump_to_client(self, sock: socket.socket) -> None:
        while True:
            try:
                data = sock.recv(READ_CHUNK_BYTES)
            except OSError:
                data = b""
            if data:
                with self._lock:
                    self._write(self._from_daemon.feed(data))
                    if not self._from_daemon.mid_line:
                        self._line_ended.notify_all()
                continue
            with self._lock:
                self._write(self._from_daemon.cut())
                self._line_ended.notify_all()
                if self._stdin_done:
                    return  # the session ended because the client left
                self._sock = None
                self._write_lines(self._flights.lost(DAEMON_LOST))
            _complain("the daemon went away; starting it again")
            sock = self._reconnect()

    def _write_lines(self, lines: list[bytes]) -> None:
        """Whole lines of our own, once no line of the daemon's is half written. Called
        with the lock held."""
        while self._from_daemon.mid_line:
            self._line_ended.wait()
        self._write([piece for line in lines for piece in (line, b"\n")])

    def _write(self, pieces: list[bytes]) -> None:
        if not pieces:
            return
        writer = self._wire.writer
        try:
            for piece in pieces:
                writer.write(piece)
            writer.flush()
        except (OSError, ValueError):
            pass  # the client is gone; stdin's end will follow


def _open_session(paths: BridgePaths, profile: dict[str, object]) -> socket.socket:
    """A session with a daemon of this very version (an older one is retired first)."""
    sock, _reply = open_current_daemon(paths, {"session": profile})
    return sock


def _framed(line: bytes) -> bytes:
    """`line` ending in one LF, copied only when it does not already (a CRLF, the last
    line without one): a large request is not copied on its way to the daemon."""
    if line.endswith(b"\n") and not line.endswith(b"\r\n"):
        return line
    return line.rstrip(b"\r\n") + b"\n"


def _exit_zero_on_sigterm() -> None:
    # Hosts stop servers with SIGTERM: exit with status 0 rather than die by the signal.
    # The socket closing at exit tells the daemon, which ends the session.
    def leave(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, leave)


def _complain(text: str) -> None:
    sys.stderr.write(f"mcp-bridge: {text}\n")
    sys.stderr.flush()
