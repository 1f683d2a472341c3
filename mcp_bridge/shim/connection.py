"""Reach the daemon: connect to its socket, and start it when nobody answers.

Five shims started together start one daemon: the one that takes the start lock spawns
it, the others wait on the lock and then find it listening. The daemon is started in a
session of its own (setsid): hosts run servers in a process group they kill as a whole,
and the daemon must outlive the shim that happened to start it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from mcp_bridge.daemon import hello
from mcp_bridge.errors import BridgeError
from mcp_bridge.paths import BridgePaths

__all__ = [
    "DaemonNotRunning",
    "DaemonUnavailable",
    "ask_current_daemon",
    "ask_daemon",
    "connect_to_daemon",
    "read_line",
    "retire_daemon",
]

START_TIMEOUT_S = 15.0  # a cold daemon imports aiohttp and opens the vault: ~0.5 s
POLL_S = 0.02
# An auto-started daemon exits after this long without a connection.
AUTO_IDLE_EXIT_S = 600.0


class DaemonUnavailable(BridgeError):
    """The daemon could not be reached or started."""


class DaemonNotRunning(DaemonUnavailable):
    """Nothing listens on the daemon's socket (and it was not to be started)."""


def connect_to_daemon(paths: BridgePaths, *, start: bool = True) -> socket.socket:
    """A connected socket to this user's daemon; with `start`, the daemon is started
    first when none is listening. Raises DaemonUnavailable."""
    path = _socket_path(paths)
    sock = _try_connect(path)
    if sock is not None or not start:
        if sock is None:
            raise DaemonNotRunning(
                "No mcp-bridge daemon is running", next_step="`mcp-bridge run` starts one"
            )
        return sock
    with _start_lock(paths):
        sock = _try_connect(path)  # another shim started it while we waited for the lock
        if sock is None:
            sock = _start_daemon(paths, path)
    return sock


def ask_daemon(
    paths: BridgePaths, command: str, *, timeout_s: float = START_TIMEOUT_S
) -> dict[str, object]:
    """Send a command hello (`status`, `stop`, `page`) to the running daemon and return its
    reply."""
    try:
        return _ask(connect_to_daemon(paths, start=False), command, timeout_s)
    except hello.HelloError as exc:
        raise DaemonUnavailable(exc.what, next_step=exc.next_step) from exc


def ask_current_daemon(paths: BridgePaths, command: str) -> dict[str, object]:
    """Send a command hello to a daemon of this very version, started when none runs. One
    left running by another mcp-bridge version (which may not know the command) is retired
    first, as a shim retires it for a session."""
    from mcp_bridge import __version__

    for attempt in range(2):
        try:
            reply = _ask(connect_to_daemon(paths), command, START_TIMEOUT_S)
        except hello.HelloError as exc:
            if attempt:
                raise DaemonUnavailable(exc.what, next_step=exc.next_step) from exc
            retire_daemon(paths, f"it cannot answer {command!r} ({exc.what})")
            continue
        if reply.get("version") == __version__ or attempt:
            return reply
        why = f"it runs mcp-bridge {reply.get('version')}, this is {__version__}"
        retire_daemon(paths, why, old_pid=reply.get("pid"))
    raise AssertionError("unreachable: the second attempt returns or raises")


def _ask(sock: socket.socket, command: str, timeout_s: float) -> dict[str, object]:
    """The daemon's reply to one command hello on `sock` (closed after). Raises
    HelloError when the daemon refused."""
    with sock:
        sock.settimeout(timeout_s)
        sock.sendall(hello.encode({"command": command}) + b"\n")
        return hello.parse_reply(read_line(sock))


def read_line(sock: socket.socket) -> bytes:
    """One line from `sock`, read a byte at a time so nothing after it is consumed (the
    hello reply is followed by JSON-RPC the relay reads through its own file object)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise DaemonUnavailable(
                "The daemon closed the connection before answering",
                next_step="See its log, daemon.log, in mcp-bridge's log directory",
            )
        line += chunk
    return bytes(line[:-1])


def retire_daemon(paths: BridgePaths, why: str, *, old_pid: object = None) -> None:
    """Ask the running daemon to stop (understood by every version) and wait until it is
    gone: nothing listens (the next connection starts a current daemon), or a service
    manager that holds the socket (systemd) has a new daemon answer in its place. Its
    other clients' shims reconnect by themselves."""
    sys.stderr.write(f"mcp-bridge: restarting the daemon: {why}\n")
    path = _socket_path(paths)
    with contextlib.suppress(OSError, DaemonUnavailable):
        sock = connect_to_daemon(paths, start=False)
        with sock:
            sock.settimeout(START_TIMEOUT_S)
            sock.sendall(hello.encode({"command": "stop"}) + b"\n")
            read_line(sock)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        probe = _try_connect(path)
        if probe is None:
            return
        probe.close()
        if old_pid is not None and _answering_pid(paths) not in (None, old_pid):
            return
        time.sleep(POLL_S)
    raise DaemonUnavailable(
        f"The daemon at {path} did not stop when asked",
        next_step="Stop it yourself (`mcp-bridge daemon status` shows its pid)",
    )


def _answering_pid(paths: BridgePaths) -> object:
    """The pid of the daemon answering now, or None when none answers."""
    try:
        return ask_daemon(paths, "status", timeout_s=POLL_S * 10).get("pid")
    except (OSError, DaemonUnavailable):
        return None


def _socket_path(paths: BridgePaths) -> Path:
    try:
        return paths.daemon_socket()
    except OSError as exc:
        raise DaemonUnavailable(
            f"The daemon's socket directory is unsafe: {exc}",
            next_step="Remove it, or set MCP_BRIDGE_HOME to a directory of your own",
        ) from exc


def _try_connect(path: Path) -> socket.socket | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(os.fspath(path))
    except (FileNotFoundError, ConnectionRefusedError):
        sock.close()
        return None
    except OSError as exc:
        sock.close()
        raise DaemonUnavailable(f"Cannot connect to the daemon at {path}: {exc}") from exc
    return sock


@contextlib.contextmanager
def _start_lock(paths: BridgePaths) -> Iterator[None]:
    paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(paths.daemon_lock_file, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held at most START_TIMEOUT_S by another shim
        yield
    finally:
        os.close(fd)  # releases the lock


def _start_daemon(paths: BridgePaths, path: Path) -> socket.socket:
    import subprocess  # only the shim that starts the daemon pays for it

    paths.log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    log_path = paths.log_file("daemon-start")
    with open(log_path, "ab", buffering=0) as early_output:
        os.chmod(log_path, 0o600)
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mcp_bridge",
                "daemon",
                "--idle-exit",
                str(AUTO_IDLE_EXIT_S),
            ],
            stdin=subprocess.DEVNULL,
            stdout=early_output,
            stderr=early_output,
            cwd="/",
            start_new_session=True,  # setsid: out of the host's process group
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        sock = _try_connect(path)
        if sock is not None:
            return sock
        if process.poll() is not None:
            raise DaemonUnavailable(
                f"The mcp-bridge daemon exited at start (code {process.returncode})",
                next_step=f"See {log_path} and {paths.log_file('daemon')}",
            )
        time.sleep(POLL_S)
    raise DaemonUnavailable(
        f"The mcp-bridge daemon did not start listening within {START_TIMEOUT_S:.0f} s",
        next_step=f"See {paths.log_file('daemon')}",
    )
