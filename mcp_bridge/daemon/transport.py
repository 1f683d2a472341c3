"""How a shim reaches the daemon: a Unix socket where Python has AF_UNIX, loopback TCP
guarded by a per-start secret where it has not (Windows: cpython issue 77589). Standard
library only, since the shim imports it; both sides go through here, so nothing else
branches on the platform.

    UnixSocketAddress   a socket file in a 0700 directory; the daemon checks each peer's uid
    LoopbackAddress     127.0.0.1:PORT and a fresh secret, published by the daemon in
                        <state dir>/daemon.endpoint (0600, in the user's own profile)

Any local process can connect to a loopback port, and any local process could listen on
the port a dead daemon named: on that transport each side proves to the other that it
holds the secret (proof.py), the daemon first, before the shim sends its hello; only this
user can read the file that holds it. Why not a named pipe: docs/daemon-transport.md.

Theory of operation

    shim     address = find_daemon(paths)      # None: no live daemon published one
             link = connect(address)           # None: nobody listens there; NotProven:
                                               #   what listens is no daemon of ours
             send hello.encode({..., **link.hello_fields})
    daemon   listening = listen(paths)         # bind, then publish the socket or endpoint
             serve listening.sock, each loopback peer proving listening.secret
             withdraw(listening)               # remove what it published, if still its own

MCP_BRIDGE_DAEMON_TRANSPORT=tcp picks loopback TCP where Unix sockets exist too (that is
how Linux CI runs it); `unix` insists on the socket; unset (or `auto`) picks by platform.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from mcp_bridge.daemon.endpoint_file import (
    LOOPBACK_HOST,
    LoopbackAddress,
    encode_endpoint,
    process_is_running,
    read_endpoint,
)
from mcp_bridge.daemon.proof import NONCE_BYTES, NotProven, ShimProof
from mcp_bridge.errors import ConfigError
from mcp_bridge.paths import BridgePaths, private_directory

__all__ = [
    "PROOF_TIMEOUT_S",
    "TRANSPORT_ENV",
    "DaemonAddress",
    "Link",
    "Listening",
    "UnixSocketAddress",
    "adopt",
    "connect",
    "find_daemon",
    "listen",
    "uses_loopback",
    "withdraw",
]

TRANSPORT_ENV = "MCP_BRIDGE_DAEMON_TRANSPORT"
LISTEN_BACKLOG = 64
# A daemon answers the challenge at once; a squatter may never, and a shim that met one
# starts a daemon that probes it again, within the shim's START_TIMEOUT_S.
PROOF_TIMEOUT_S = 5.0
# The daemon's answer is ~200 bytes; a protocol 1 daemon's refusal ~250.
_ANSWER_LIMIT_BYTES = 4096


class UnixSocketAddress(NamedTuple):
    path: Path

    def __str__(self) -> str:
        return str(self.path)


DaemonAddress = UnixSocketAddress | LoopbackAddress


class Link(NamedTuple):
    """A connection to the daemon, ready for the hello."""

    sock: socket.socket
    hello_fields: dict[str, object]  # what the hello must carry: loopback TCP's proof


def uses_loopback(environ: Mapping[str, str] | None = None) -> bool:
    """True when the daemon is reached over loopback TCP (see the module docstring).
    Raises ConfigError for a value of MCP_BRIDGE_DAEMON_TRANSPORT it cannot honour."""
    value = (os.environ if environ is None else environ).get(TRANSPORT_ENV, "")
    choice = value.strip().lower()
    has_unix = hasattr(socket, "AF_UNIX")
    if choice in ("", "auto"):
        return not has_unix
    if choice == "tcp":
        return True
    if choice == "unix" and has_unix:
        return False
    if choice == "unix":
        raise ConfigError(
            f"{TRANSPORT_ENV}=unix, but this Python has no Unix sockets",
            next_step=f"Unset {TRANSPORT_ENV}: the daemon then listens on {LOOPBACK_HOST}",
        )
    raise ConfigError(
        f"{TRANSPORT_ENV}={value!r} names no daemon transport",
        next_step="Set it to tcp or unix, or unset it to let mcp-bridge choose",
    )


# -- the shim's side ----------------------------------------------------------------------


def find_daemon(paths: BridgePaths) -> DaemonAddress | None:
    """Where this user's daemon listens: its socket's path, or the loopback endpoint a
    daemon published; None when none is published or the process that published it is
    gone. Raises OSError when the socket's directory is not this user's alone."""
    if not uses_loopback():
        return UnixSocketAddress(paths.daemon_socket())
    address = read_endpoint(paths.daemon_endpoint_file)
    if address is None or not process_is_running(address.pid):
        return None
    return address


def connect(address: DaemonAddress, *, timeout_s: float = PROOF_TIMEOUT_S) -> Link | None:
    """A connection to `address`, or None when nobody listens there. On loopback TCP the
    daemon has proved itself (proof.py) before this returns: raises NotProven when what
    listens did not, within `timeout_s`. Raises OSError for any other failure."""
    target: str | tuple[str, int]
    if isinstance(address, UnixSocketAddress):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        target = os.fspath(address.path)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # Each line is a message someone waits for: no Nagle delay behind an unacked one.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        target = (LOOPBACK_HOST, address.port)
    try:
        sock.connect(target)
        if isinstance(address, UnixSocketAddress):
            return Link(sock, {})  # the kernel tells the daemon who connected
        return Link(sock, _prove(sock, address.secret, min(timeout_s, PROOF_TIMEOUT_S)))
    except (FileNotFoundError, ConnectionRefusedError, ConnectionResetError):
        # Reset: the connection was still in the listener's queue when a stopping daemon
        # closed it. Nobody listens there now, as with a refusal.
        sock.close()
        return None
    except BaseException:
        sock.close()
        raise


def _prove(sock: socket.socket, secret: str, timeout_s: float) -> dict[str, object]:
    """The challenge exchange, shim's side: the hello fields once the daemon proved
    itself. Raises NotProven."""
    exchange = ShimProof(secret, os.urandom(NONCE_BYTES))
    sock.settimeout(timeout_s)
    try:
        sock.sendall(exchange.challenge() + b"\n")
        answer = bytearray()
        while not answer.endswith(b"\n"):
            # A daemon says nothing more until it has the hello: no read takes more.
            chunk = sock.recv(_ANSWER_LIMIT_BYTES)
            if not chunk:
                raise NotProven("it closed the connection without answering the challenge")
            answer += chunk
            if b"\n" in answer[:-1] or len(answer) > _ANSWER_LIMIT_BYTES:
                raise NotProven("it answered the challenge with more than one short line")
    except TimeoutError:
        raise NotProven(f"it did not answer the challenge within {timeout_s:g} s") from None
    except ConnectionError as exc:
        raise NotProven(f"it dropped the connection at the challenge ({exc})") from None
    sock.settimeout(None)
    return exchange.hello_fields(bytes(answer[:-1]))


# -- the daemon's side --------------------------------------------------------------------


class Listening(NamedTuple):
    """A daemon's listening socket and how shims find it."""

    sock: socket.socket
    secret: str | None  # loopback: what each hello must carry; None: the peer's uid is checked
    published: Path | None  # the socket or endpoint file leading here; None: systemd's socket
    fingerprint: tuple[int, int] | bytes | None  # `published` as this daemon made it

    def __repr__(self) -> str:
        return f"Listening({self.sock.getsockname()!r}, published={self.published})"


def listen(paths: BridgePaths) -> Listening:
    """Listen on this user's transport and publish where. Raises OSError when a live
    daemon already listens there (the message says where), ConfigError for a bad
    MCP_BRIDGE_DAEMON_TRANSPORT."""
    if uses_loopback():
        return _listen_loopback(paths.daemon_endpoint_file)
    path = paths.daemon_socket()
    sock = _bind_unix_socket(path)
    return Listening(sock, None, path, _identity(path))


def adopt(sock: socket.socket) -> Listening:
    """The Unix socket a service manager bound and passed us (systemd socket activation):
    its file is the manager's, never removed by the daemon."""
    return Listening(sock, None, None, None)


def withdraw(listening: Listening) -> None:
    """Remove the file that leads shims to this daemon, if it still does: by now another
    listener (systemd's socket, a newer daemon) may own the name, and removing their file
    would cut new shims off."""
    path = listening.published
    if path is None:
        return
    now = _identity(path) if listening.secret is None else _content(path)
    if now is not None and now == listening.fingerprint:
        with contextlib.suppress(OSError):
            path.unlink()


def _bind_unix_socket(path: Path) -> socket.socket:
    """A listening Unix socket at `path`, in a 0700 directory, the socket file 0600.
    A stale file from a daemon that died is replaced; a live daemon's is not (OSError)."""
    private_directory(path.parent)
    if path.exists():
        probe = connect(UnixSocketAddress(path))
        if probe is not None:
            probe.sock.close()
            raise OSError(f"another mcp-bridge daemon is listening on {path}")
        path.unlink()  # nobody listens: left by a daemon that was killed
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # no window in which the socket file is open to others
    try:
        listener.bind(os.fspath(path))
        listener.listen(LISTEN_BACKLOG)
    except BaseException:
        listener.close()
        raise
    finally:
        os.umask(old_umask)
    return listener


def _listen_loopback(endpoint_file: Path) -> Listening:
    """127.0.0.1 on a port the OS picks, published with a new secret in `endpoint_file`."""
    import secrets

    from mcp_bridge import __version__
    from mcp_bridge.atomic_file import write_atomically

    running = read_endpoint(endpoint_file)
    if running is not None and process_is_running(running.pid) and _proves_itself(running):
        raise OSError(f"another mcp-bridge daemon is listening on {running} (pid {running.pid})")
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        if sys.platform == "win32":
            # Otherwise a process binding the same port with SO_REUSEADDR could take over
            # connections meant for this daemon (Winsock lets it; POSIX does not).
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        listener.bind((LOOPBACK_HOST, 0))
        listener.listen(LISTEN_BACKLOG)
        port = int(listener.getsockname()[1])
        address = LoopbackAddress(port, secrets.token_urlsafe(32), os.getpid(), __version__)
        content = encode_endpoint(address)
        # The file is 0600 (write_atomically's mode) in the 0700 state directory. On
        # Windows those bits mean little: the file is private because the state
        # directory lies under the user's LOCALAPPDATA, whose ACL admits that user (and
        # SYSTEM and Administrators) only. A MCP_BRIDGE_HOME elsewhere must be as private.
        write_atomically(endpoint_file, content)
    except BaseException:
        listener.close()
        raise
    return Listening(listener, address.secret, endpoint_file, content)


def _proves_itself(address: LoopbackAddress) -> bool:
    """Whether a daemon that holds the endpoint's secret listens at `address`. What does
    not prove it (a protocol 1 daemon, a squatter) is left: the new endpoint leads away."""
    try:
        probe = connect(address)
    except NotProven as exc:
        import logging

        logging.getLogger(__name__).warning(
            "daemon.endpoint named %s (pid %d), which did not prove it is a daemon of "
            "this user's: %s; publishing a new endpoint",
            address,
            address.pid,
            exc,
        )
        return False
    if probe is None:
        return False
    probe.sock.close()
    return True


def _identity(path: Path) -> tuple[int, int] | None:
    """Which file `path` is (device and inode), or None."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_dev, info.st_ino


def _content(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None
