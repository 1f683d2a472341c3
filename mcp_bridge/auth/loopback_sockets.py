"""The listening sockets behind a loopback redirect URI (RFC 8252 §7.3, §8.3: loopback,
http, any port). Knows sockets and address families, not HTTP or OAuth.

`CallbackHost.IPV4` (the IP literal RFC 8252 §8.3 recommends) binds 127.0.0.1 only.
`CallbackHost.LOCALHOST` exists for authorization servers (and CIMD documents) that accept
only the `localhost` name; then the same port is bound on 127.0.0.1 and on ::1, because a
browser may resolve `localhost` to either and we cannot tell which.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import socket

from mcp_bridge.errors import AuthError

__all__ = ["DEFAULT_CALLBACK_TIMEOUT_S", "CallbackHost", "bind_loopback"]

log = logging.getLogger(__name__)

# How long a login waits for the browser's redirect (also OAuthSettings' default; it lives
# here, with no HTTP server code, so that reading settings does not load aiohttp.web).
DEFAULT_CALLBACK_TIMEOUT_S = 300.0
# When the ephemeral IPv4 port turns out to be taken on ::1, try another this many times.
DUAL_STACK_ATTEMPTS = 8


class CallbackHost(enum.Enum):
    """The host name in the redirect URI, which decides what we bind."""

    IPV4 = "127.0.0.1"  # RFC 8252 §8.3 recommends the IP literal: bound on 127.0.0.1 only
    LOCALHOST = "localhost"  # for ASes that accept only this name: bound on 127.0.0.1 and ::1


def bind_loopback(host: CallbackHost, port: int) -> list[socket.socket]:
    """Listening sockets for `host`: the first is 127.0.0.1, whose port is the one we use."""
    if host is CallbackHost.IPV4:
        return [_listen(socket.AF_INET, "127.0.0.1", port)]
    attempts = DUAL_STACK_ATTEMPTS if port == 0 else 1
    for _ in range(attempts):
        ipv4 = _listen(socket.AF_INET, "127.0.0.1", port)
        chosen = ipv4.getsockname()[1]
        try:
            ipv6 = _listen(socket.AF_INET6, "::1", chosen)
        except AuthError:
            ipv4.close()
            if port:
                raise
            continue  # the ephemeral port is taken on ::1 only: pick another
        except OSError as exc:
            # No IPv6 loopback here (disabled, or no ::1): a browser cannot reach ::1 either.
            log.debug("not listening on [::1]: %s", exc)
            return [ipv4]
        return [ipv4, ipv6]
    raise AuthError(
        "Could not find a free port on both 127.0.0.1 and ::1 for the login callback",
        next_step="Retry, or use the 127.0.0.1 redirect instead of localhost",
    )


def _listen(family: socket.AddressFamily, address: str, port: int) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        if os.name == "nt":
            # Windows' SO_REUSEADDR would let another process steal the port; this forbids it.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)  # type: ignore[attr-defined,unused-ignore]
        else:
            # A fixed callback_port must be reusable while the last login's socket lingers
            # in TIME_WAIT; on POSIX this does not allow two listeners on one port.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind((address, port))
        sock.listen(16)
        sock.setblocking(False)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise AuthError(
                f"The login callback port {port} on {address} is already in use",
                next_step="Close the program using it (another login?) or choose another "
                "callback port",
            ) from exc
        raise
    return sock
