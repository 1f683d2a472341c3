"""The terminal's side of joining the daemon's login (daemon/login_join.py): when the
daemon runs a login for the server, `mcp-bridge login` prints that login's URL (the daemon
opens its tab too) and waits for its end, instead of starting a second one.

No daemon, one that runs no login for the server, or one too old to know `join-login`:
None, and the command signs in by itself as it always did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from mcp_bridge.daemon import hello
from mcp_bridge.daemon.login_join import LoggedIn, SignInShown, parse_join_line
from mcp_bridge.errors import AuthError
from mcp_bridge.paths import BridgePaths
from mcp_bridge.shim.connection import DaemonUnavailable, open_daemon

__all__ = ["join_daemon_login", "joined_sign_in_text"]

log = logging.getLogger(__name__)

_SEE_DAEMON_LOG = "See daemon.log in mcp-bridge's log directory, then run the login again"


def joined_sign_in_text(server: str, shown: SignInShown) -> str:
    """What the terminal says of the daemon's login: the URL on a line of its own."""
    code = f"\nand enter the code {shown.code}" if shown.code is not None else ""
    if shown.tab:
        return (
            f"mcp-bridge: the daemon is already signing in to {server}: sign in in the "
            f"browser window it opened, or open this URL in another:\n{shown.url}{code}"
        )
    return (
        f"mcp-bridge: the daemon is already signing in to {server}: to sign in, open this "
        f"URL in a browser:\n{shown.url}{code}"
    )


async def join_daemon_login(
    paths: BridgePaths, server: str, on_sign_in: Callable[[SignInShown], None]
) -> LoggedIn | None:
    """Join the daemon's login to `server`: its outcome (`on_sign_in` told of its URL
    first), or None when there is none to join. AuthError when that login failed."""
    message: dict[str, object] = {"command": hello.JOIN_LOGIN, "url": server}
    try:
        sock, reply = await asyncio.to_thread(open_daemon, paths, message, start=False)
    except (DaemonUnavailable, hello.HelloError) as exc:
        log.debug("not joining a daemon's login: %s", exc)
        return None
    if reply.get("joined") is not True:
        sock.close()
        return None
    reader, writer = await asyncio.open_connection(sock=sock)
    try:
        while line := await reader.readline():
            step = parse_join_line(line.rstrip(b"\n"))
            if isinstance(step, LoggedIn):
                return step
            on_sign_in(step)
    except hello.HelloError as exc:
        raise AuthError(exc.what, next_step=exc.next_step) from None
    except ConnectionError as exc:
        log.debug("the daemon's connection broke: %s", exc)
    finally:
        writer.close()
    raise AuthError(
        f"The daemon ended the connection before its login to {server} ended",
        next_step=_SEE_DAEMON_LOG,
    )
