"""Who is on the other end of a Unix socket. The socket's directory is 0700, and the
peer's uid is checked as well: a directory mode can be loosened by mistake, and on some
systems a socket file's own permissions are not enforced."""

from __future__ import annotations

import socket
import struct
import sys

__all__ = ["peer_uid"]

# <sys/un.h> on macOS and the BSDs: LOCAL_PEERCRED at level SOL_LOCAL (0) gives a struct
# xucred {u_int cr_version; uid_t cr_uid; short cr_ngroups; gid_t cr_groups[16]}.
_SOL_LOCAL = 0
_LOCAL_PEERCRED = 1
_XUCRED_SIZE = 4 + 4 + 2 + 2 + 16 * 4  # with the padding before cr_groups


def peer_uid(sock: socket.socket) -> int | None:
    """The uid of the process that connected, or None where the OS cannot tell us."""
    if sys.platform.startswith("linux"):
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        _pid, uid, _gid = struct.unpack("3i", creds)
        return int(uid)
    if sys.platform == "darwin" or "bsd" in sys.platform:
        creds = sock.getsockopt(_SOL_LOCAL, _LOCAL_PEERCRED, _XUCRED_SIZE)
        _version, uid = struct.unpack_from("Ii", creds)
        return int(uid)
    return None
