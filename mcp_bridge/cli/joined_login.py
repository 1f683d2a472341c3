"""The terminal's side of joining the daemon's login (daemon/login_join.py): when the
daemon runs a login for the server, `mcp-bridge login` prints that login's URL (the daemon
opens its tab too) and waits for its end, instead of starting a second one. On a terminal
it takes the address the browser ends on, pasted, as its own login would (over SSH the
browser's redirect cannot reach the daemon's listener), and hands it to the daemon, which
judges it; a refusal is printed, and the wait goes on.

No daemon, one that runs no login for the server, or one too old to know `join-login`:
None, and the command signs in by itself as it always did.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from mcp_bridge.auth.url_showing import PASTE_OFFER
from mcp_bridge.daemon import hello
from mcp_bridge.daemon.login_join import (
    LoggedIn,
    PasteRefused,
    SignInShown,
    parse_join_line,
    pasted_line,
)
from mcp_bridge.errors import AuthError
from mcp_bridge.paths import BridgePaths
from mcp_bridge.shim.connection import DaemonUnavailable, open_daemon

if TYPE_CHECKING:  # the module itself loads what a terminal signing in alone needs
    from mcp_bridge.auth.sign_in import Notify, PastedUrls

__all__ = ["join_daemon_login", "joined_sign_in_text"]

log = logging.getLogger(__name__)

_SEE_DAEMON_LOG = "See daemon.log in mcp-bridge's log directory, then run the login again"


def joined_sign_in_text(server: str, shown: SignInShown, *, paste: bool = False) -> str:
    """What the terminal says of the daemon's login: the URL on a line of its own.
    `paste`: this terminal takes a pasted address, offered when the login takes one."""
    offer = PASTE_OFFER if paste and shown.paste else ""
    code = f"\nand enter the code {shown.code}" if shown.code is not None else ""
    if shown.tab:
        return (
            f"mcp-bridge: the daemon is already signing in to {server}: sign in in the "
            f"browser window it opened, or open this URL in another{offer}:\n{shown.url}{code}"
        )
    return (
        f"mcp-bridge: the daemon is already signing in to {server}: to sign in, open this "
        f"URL in a browser{offer}:\n{shown.url}{code}"
    )


async def join_daemon_login(
    paths: BridgePaths,
    server: str,
    on_sign_in: Callable[[SignInShown], None],
    *,
    pasted_urls: PastedUrls | None = None,
    notify: Notify,
) -> LoggedIn | None:
    """Join the daemon's login to `server`: its outcome (`on_sign_in` told of its URL
    first), or None when there is none to join. AuthError when that login failed.
    `pasted_urls`: the lines typed into this terminal, each handed to the daemon when its
    login takes a pasted address; `notify` prints why one was refused."""
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
    pasting: asyncio.Task[None] | None = None
    try:
        while line := await reader.readline():
            step = parse_join_line(line.rstrip(b"\n"))
            if isinstance(step, LoggedIn):
                return step
            if isinstance(step, PasteRefused):
                notify(f"mcp-bridge: {AuthError(step.what, next_step=step.next_step)}")
                continue
            on_sign_in(step)
            if step.paste and pasted_urls is not None and pasting is None:
                pasting = asyncio.create_task(_hand_over(pasted_urls, writer))
    except hello.HelloError as exc:
        raise AuthError(exc.what, next_step=exc.next_step) from None
    except ConnectionError as exc:
        log.debug("the daemon's connection broke: %s", exc)
    finally:
        if pasting is not None:
            pasting.cancel()
            await asyncio.gather(pasting, return_exceptions=True)
        writer.close()
    raise AuthError(
        f"The daemon ended the connection before its login to {server} ended",
        next_step=_SEE_DAEMON_LOG,
    )


async def _hand_over(pasted_urls: PastedUrls, writer: asyncio.StreamWriter) -> None:
    """Send each non-blank line typed to the daemon, as it is typed; the daemon answers
    for each that it refuses, and its login's end answers for the one it takes."""
    async for line in pasted_urls():
        if line.strip():
            writer.write(pasted_line(line.strip()) + b"\n")
            await writer.drain()
