"""Reach the daemon: connect over this user's transport (daemon/transport.py), say the
hello, and start the daemon when nobody answers.

On loopback TCP, what listens at the published endpoint must prove it holds the secret
(daemon/proof.py) before the shim sends its hello. What does not (a program on the port of
a daemon that died, or a daemon of protocol 1, which cannot) counts as no daemon: the shim
says so on stderr and starts one as usual, whose new endpoint file leads every shim away.

Five shims started together start one daemon: the one that takes the start lock spawns
it, the others wait on the lock and then find it listening. The daemon is started apart
from the shim (a session of its own on POSIX, `setsid`; on Windows a process group of its
own, without a console): hosts run servers in a process group they kill as a whole, and
the daemon must outlive the shim that happened to start it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from collections.abc import Iterator

from mcp_bridge import __version__
from mcp_bridge.daemon import endpoint_file, hello, transport
from mcp_bridge.daemon.proof import NotProven
from mcp_bridge.errors import BridgeError
from mcp_bridge.paths import BridgePaths

__all__ = [
    "DaemonNotRunning",
    "DaemonStopping",
    "DaemonUnavailable",
    "ask_current_daemon",
    "ask_daemon",
    "open_current_daemon",
    "open_daemon",
    "retire_daemon",
    "start_lock",
]

START_TIMEOUT_S = 15.0  # a cold daemon imports aiohttp and opens the vault: ~0.5 s
# A shim that finds the start lock taken waits for the one starting the daemon.
START_LOCK_TIMEOUT_S = 2 * START_TIMEOUT_S
POLL_S = 0.02
# Daemons met stopping in a row before a shim gives up (each is gone in milliseconds).
STOPPING_RETRIES = 3
# An auto-started daemon exits after this long without a connection.
AUTO_IDLE_EXIT_S = 600.0

Connected = tuple[transport.Link, transport.DaemonAddress]


class DaemonUnavailable(BridgeError):
    """The daemon could not be reached or started."""


class DaemonNotRunning(DaemonUnavailable):
    """No daemon listens (and it was not to be started)."""


class DaemonStopping(DaemonUnavailable):
    """The daemon took the connection and closed it unanswered: it is stopping (its idle
    exit, `daemon stop`, a retirement), and had accepted just before it stopped listening."""


def open_daemon(
    paths: BridgePaths,
    message: dict[str, object],
    *,
    start: bool,
    timeout_s: float = START_TIMEOUT_S,
) -> tuple[socket.socket, dict[str, object]]:
    """Connect to this user's daemon (with `start`, started first when none answers), send
    the hello `message` with what the transport asks of it (the proof, on loopback TCP),
    and return the socket and the daemon's `ok` reply. Raises HelloError when the daemon
    refused, DaemonUnavailable when none could be reached."""
    (sock, hello_fields), address = _connect(paths, start=start, timeout_s=timeout_s)
    try:
        sock.settimeout(timeout_s)
        sock.sendall(hello.encode({**message, **hello_fields}) + b"\n")
        reply = hello.parse_reply(_read_line(sock))
        sock.settimeout(None)
    except OSError as exc:
        sock.close()
        raise DaemonUnavailable(
            f"The daemon at {address} did not answer: {exc}", next_step=_SEE_DAEMON_LOG
        ) from exc
    except BaseException:
        sock.close()
        raise
    return sock, reply


def open_current_daemon(
    paths: BridgePaths, message: dict[str, object]
) -> tuple[socket.socket, dict[str, object]]:
    """`open_daemon` with a daemon of this very version, started when none runs. One left
    running by another mcp-bridge version (an upgrade), which may not even know the
    request, is retired first; one met in the moment it stops is tried again (by then it
    is gone, so one is started). Raises HelloError when the current daemon refuses too, or
    at once when it refused a session's profile (`is_config`: a flag to fix)."""
    retired = False
    stopping_met = 0
    while True:
        try:
            sock, reply = open_daemon(paths, message, start=True)
        except DaemonStopping:
            # It is gone in a moment: the next attempt starts one, as a shim coming a
            # moment later would.
            stopping_met += 1
            if stopping_met > STOPPING_RETRIES:
                raise
            time.sleep(POLL_S)
            continue
        except hello.HelloError as exc:
            if exc.is_config or retired:
                raise
            retire_daemon(paths, f"it did not take this version's hello ({exc.what})")
            retired = True
            continue
        if reply.get("version") == __version__ or retired:
            return sock, reply
        sock.close()
        why = f"it runs mcp-bridge {reply.get('version')}, this is {__version__}"
        retire_daemon(paths, why, old_pid=reply.get("pid"))
        retired = True


def ask_daemon(
    paths: BridgePaths, command: str, *, timeout_s: float = START_TIMEOUT_S
) -> dict[str, object]:
    """Send a command hello (`status`, `stop`, `page`) to the running daemon and return its
    reply."""
    try:
        sock, reply = open_daemon(paths, {"command": command}, start=False, timeout_s=timeout_s)
    except hello.HelloError as exc:
        raise DaemonUnavailable(exc.what, next_step=exc.next_step) from exc
    sock.close()
    return reply


def ask_current_daemon(paths: BridgePaths, command: str) -> dict[str, object]:
    """Send a command hello to a daemon of this very version (`open_current_daemon`)."""
    try:
        sock, reply = open_current_daemon(paths, {"command": command})
    except hello.HelloError as exc:
        raise DaemonUnavailable(exc.what, next_step=exc.next_step) from exc
    sock.close()
    return reply


def _read_line(sock: socket.socket) -> bytes:
    """One line from `sock`, read a byte at a time so nothing after it is consumed (the
    hello reply is followed by JSON-RPC the relay reads through its own file object)."""
    line = bytearray()
    while not line.endswith(b"\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise DaemonStopping(
                "The daemon closed the connection before answering", next_step=_SEE_DAEMON_LOG
            )
        line += chunk
    return bytes(line[:-1])


def retire_daemon(paths: BridgePaths, why: str, *, old_pid: object = None) -> None:
    """Ask the running daemon to stop (understood by every version) and wait until it is
    gone: nothing listens (the next connection starts a current daemon), or a service
    manager that holds the socket (systemd) has a new daemon answer in its place. Its
    other clients' shims reconnect by themselves."""
    sys.stderr.write(f"mcp-bridge: restarting the daemon: {why}\n")
    where = _find(paths)
    with contextlib.suppress(DaemonUnavailable, hello.HelloError):
        sock, _ = open_daemon(paths, {"command": "stop"}, start=False)
        sock.close()
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        connected = _try_connect(paths)
        if connected is None:
            return
        connected[0].sock.close()
        if old_pid is not None and _answering_pid(paths) not in (None, old_pid):
            return
        time.sleep(POLL_S)
    raise DaemonUnavailable(
        f"The daemon at {where} did not stop when asked",
        next_step="Stop it yourself (`mcp-bridge daemon status` shows its pid)",
    )


@contextlib.contextmanager
def start_lock(paths: BridgePaths) -> Iterator[None]:
    """Held by whoever starts a daemon (a shim; `service install` while it hands over),
    so that one starts however many try at once."""
    from mcp_bridge.process_lock import ProcessFileLock  # only a shim that found no daemon

    lock = ProcessFileLock(paths.daemon_lock_file)
    try:
        lock.acquire(START_LOCK_TIMEOUT_S)
    except TimeoutError:
        raise DaemonUnavailable(
            f"Another mcp-bridge process held {lock.path} for over "
            f"{START_LOCK_TIMEOUT_S:.0f} s while starting the daemon",
            next_step=_SEE_DAEMON_LOG,
        ) from None
    try:
        yield
    finally:
        lock.release()


_SEE_DAEMON_LOG = "See its log, daemon.log, in mcp-bridge's log directory"


def _answering_pid(paths: BridgePaths) -> object:
    """The pid of the daemon answering now, or None when none answers."""
    try:
        return ask_daemon(paths, "status", timeout_s=POLL_S * 10).get("pid")
    except (OSError, DaemonUnavailable):
        return None


def _find(paths: BridgePaths) -> transport.DaemonAddress | None:
    try:
        return transport.find_daemon(paths)
    except OSError as exc:
        raise DaemonUnavailable(
            f"The daemon's socket directory is unsafe: {exc}",
            next_step="Remove it, or set MCP_BRIDGE_HOME to a directory of your own",
        ) from exc


def _try_connect(
    paths: BridgePaths,
    *,
    not_at: transport.DaemonAddress | None = None,
    timeout_s: float = START_TIMEOUT_S,
) -> Connected | None:
    """A connection to the daemon, or None when none listens or what listens did not prove
    itself (said on stderr). `not_at`: an address known to be stale, not tried again
    (Windows retries a refused connection before it gives up, which is slow)."""
    address = _find(paths)
    if address is None or address == not_at:
        return None
    try:
        link = transport.connect(address, timeout_s=timeout_s)
    except NotProven as exc:
        _say_not_proven(address, exc)
        return None
    except OSError as exc:
        raise DaemonUnavailable(f"Cannot connect to the daemon at {address}: {exc}") from exc
    return None if link is None else (link, address)


def _say_not_proven(address: transport.DaemonAddress, exc: NotProven) -> None:
    pid = address.pid if isinstance(address, endpoint_file.LoopbackAddress) else "?"
    why = (
        " (a daemon of an older mcp-bridge, which cannot prove itself: it is left to exit "
        "by itself once idle)"
        if exc.old_protocol
        else ""
    )
    sys.stderr.write(
        f"mcp-bridge: not using {address} (pid {pid} in daemon.endpoint): it did not prove "
        f"it holds this user's daemon secret, so nothing was sent to it; {exc}{why}\n"
    )


def _connect(paths: BridgePaths, *, start: bool, timeout_s: float) -> Connected:
    tried = _find(paths)
    connected = _try_connect(paths, timeout_s=timeout_s)
    if connected is not None:
        return connected
    if not start:
        raise DaemonNotRunning(
            "No mcp-bridge daemon is running", next_step="`mcp-bridge run` starts one"
        )
    # An endpoint that refused or did not prove itself once is not tried again: a daemon
    # started meanwhile publishes a new one (a Unix socket's path is always worth a retry).
    stale = tried if isinstance(tried, endpoint_file.LoopbackAddress) else None
    with start_lock(paths):
        # another shim started it while we waited for the lock
        connected = _try_connect(paths, not_at=stale, timeout_s=timeout_s)
        return connected if connected is not None else _start_daemon(paths, timeout_s)


def _start_daemon(paths: BridgePaths, timeout_s: float) -> Connected:
    import subprocess  # only the shim that starts the daemon pays for it

    stale = _find(paths)
    # Wait for the endpoint file the new daemon writes, not the old one's; a Unix socket's
    # path stays the same, and is simply tried until it answers.
    not_at = stale if isinstance(stale, endpoint_file.LoopbackAddress) else None
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
            cwd=os.path.abspath(os.sep),
            start_new_session=True,  # setsid: out of the host's process group (POSIX)
            creationflags=_windows_detached_flags(),
            close_fds=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        connected = _try_connect(paths, not_at=not_at, timeout_s=timeout_s)
        if connected is not None:
            return connected
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


def _windows_detached_flags() -> int:
    """Windows has no setsid (and ignores start_new_session): the daemon gets a process
    group of its own (a console's Ctrl+C to the host's group misses it), no console and no
    window. 0 elsewhere, where Popen refuses any other value."""
    if sys.platform != "win32":
        return 0
    import subprocess

    return (
        subprocess.DETACHED_PROCESS
        | subprocess.CREATE_NEW_PROCESS_GROUP
        | subprocess.CREATE_NO_WINDOW
    )
