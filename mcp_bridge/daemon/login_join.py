"""`mcp-bridge login` in a terminal joining the login the daemon runs for a server.

Why: a login the daemon started for a client that shows its URL itself (a sign-in round,
error -32042) opened no browser tab (auth/url_showing.py). A terminal login that only
waited for that login's tokens (the cross-process login lock) would show its user
nothing to open. Joined here instead, it is a person asking: the daemon opens its tab,
the terminal prints the URL, and it stays one login (one authorization request).

The connection, after the `join-login` hello (hello.py) and `{"ok": true, "joined": true}`:

    daemon -> terminal   {"mcp-bridge": 2, "ok": true, "sign_in": {"url": URL,
                          "code": C | null, "tab": true | false}}      once the URL waits
                         {"mcp-bridge": 2, "ok": true, "logged_in": {"issuer": ...,
                          "scopes": [...], "refresh_token": true | false}}     the end
                         {"mcp-bridge": 2, "error": ..., "next_step": ...}     or this end

`tab`: the daemon opens browser tabs (not `--no-browser`). The terminal sends nothing after
its hello; when it closes (Ctrl-C), the daemon stops answering it, and the login carries on
for the clients that wait for it. The pure part (the lines) is here for both ends; the
daemon's side of the connection is `serve_join`, the terminal's is cli/joined_login.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple

from mcp_bridge.daemon import hello
from mcp_bridge.errors import BridgeError

if TYPE_CHECKING:
    from mcp_bridge.engine.registry import CredentialRegistry

__all__ = ["LoggedIn", "SignInShown", "parse_join_line", "serve_join"]

log = logging.getLogger(__name__)


class SignInShown(NamedTuple):
    """The URL the joined login waits at (and a device login's code)."""

    url: str
    code: str | None
    tab: bool  # the daemon opens browser tabs


class LoggedIn(NamedTuple):
    """The joined login's outcome: tokens kept in the vault."""

    issuer: str
    scopes: tuple[str, ...]
    refresh_token: bool


def sign_in_line(shown: SignInShown) -> bytes:
    return hello.ok_reply(sign_in=shown._asdict())


def logged_in_line(done: LoggedIn) -> bytes:
    return hello.ok_reply(logged_in={**done._asdict(), "scopes": list(done.scopes)})


def parse_join_line(line: bytes) -> SignInShown | LoggedIn:
    """A line of the daemon's after `joined`. HelloError: the daemon's error (the login
    failed: its message and next step), or a line that is none of ours."""
    doc = hello.parse_reply(line)
    shown, done = doc.get("sign_in"), doc.get("logged_in")
    if isinstance(shown, dict):
        url, code, tab = shown.get("url"), shown.get("code"), shown.get("tab")
        if isinstance(url, str) and isinstance(code, str | None) and isinstance(tab, bool):
            return SignInShown(url, code, tab)
    if isinstance(done, dict):
        issuer, scopes, refresh = done.get("issuer"), done.get("scopes"), done.get("refresh_token")
        if (
            isinstance(issuer, str)
            and isinstance(scopes, list)
            and all(isinstance(scope, str) for scope in scopes)
            and isinstance(refresh, bool)
        ):
            return LoggedIn(issuer, tuple(scopes), refresh)
    raise hello.HelloError(f"The daemon's line about its login is not understood: {line[:80]!r}")


async def serve_join(
    registry: CredentialRegistry,
    url: str,
    reader: asyncio.StreamReader,
    say: Callable[[bytes], Awaitable[None]],
) -> None:
    """The daemon's side: join the login running for `url` as a person asking (its tab
    opens), say its URL once it waits and then how it ended; `joined: false` when no
    login runs for that server (the terminal then signs in by itself)."""
    try:
        credentials = registry.running_login(url)
    except BridgeError as exc:
        await say(hello.error_reply(exc.what, exc.next_step))
        return
    if credentials is None:
        await say(hello.ok_reply(joined=False))
        return
    await say(hello.ok_reply(joined=True))
    log.info("a terminal joined the login to %s", url)
    login = asyncio.ensure_future(credentials.login())  # joins; the tab opens for it
    shown = asyncio.ensure_future(credentials.sign_in_url_shown())
    hangup = asyncio.ensure_future(reader.read())  # the terminal says nothing more: EOF
    try:
        await asyncio.wait((login, shown, hangup), return_when=asyncio.FIRST_COMPLETED)
        if shown.done() and not login.done() and not hangup.done():
            sign_in_url, _ = shown.result()
            tab = credentials.logins.settings.open_browser
            await say(sign_in_line(SignInShown(sign_in_url, credentials.logins.pending_code, tab)))
            await asyncio.wait((login, hangup), return_when=asyncio.FIRST_COMPLETED)
        if not login.done():
            log.info("the terminal that joined the login to %s has gone", url)
            return  # the login itself is shielded: it carries on for its clients
        try:
            result = login.result()
        except BridgeError as exc:
            await say(hello.error_reply(exc.what, exc.next_step))
            return
        tokens = result.tokens
        done = LoggedIn(result.context.issuer, tokens.scopes, tokens.refresh_token is not None)
        await say(logged_in_line(done))
    finally:
        for task in (login, shown, hangup):
            task.cancel()
        await asyncio.gather(login, shown, hangup, return_exceptions=True)
