"""`mcp-bridge login` in a terminal joining the login the daemon runs for a server.

Why: a login the daemon started for a client that shows its URL itself (a sign-in round,
error -32042) opened no browser tab (auth/url_showing.py). A terminal login that only
waited for that login's tokens (the cross-process login lock) would show its user
nothing to open. Joined here instead, it is a person asking: the daemon opens its tab,
the terminal prints the URL, and it stays one login (one authorization request).

The connection, after the `join-login` hello (hello.py) and `{"ok": true, "joined": true}`:

    daemon -> terminal   {"mcp-bridge": 2, "ok": true, "sign_in": {"url": URL,
                          "code": C | null, "tab": true | false,
                          "paste": true | false}}                      once the URL waits
                         {"mcp-bridge": 2, "ok": true, "paste_refused": {"what": ...,
                          "next_step": ...}}                 a pasted address not taken
                         {"mcp-bridge": 2, "ok": true, "logged_in": {"issuer": ...,
                          "scopes": [...], "refresh_token": true | false}}     the end
                         {"mcp-bridge": 2, "error": ..., "next_step": ...}     or this end
    terminal -> daemon   {"mcp-bridge": 2, "pasted": ADDRESS}    what a browser ended on

`tab`: the daemon opens browser tabs (not `--no-browser`). `paste`: the login waits for
its browser's redirect, so it takes that address pasted instead (over SSH the browser runs
on another machine and its redirect to our loopback listener never arrives). A daemon from
before pastes says no `paste`, and its terminal then offers none. A pasted address is judged
as the listener judges a redirect (auth/loopback.py, `CallbackWait.submit_pasted`): one
that is not this login's (another address, another login's `state`, no URL at all) is
refused on a `paste_refused` line and the login waits on, for another paste or the
browser; this login's own ends the login as its redirect would, an AS's `error=` included,
and the `logged_in` or error line says how. Whichever comes first, the redirect or a
paste, is the one: a paste after it is refused as too late. The address carries the
authorization code: it is never logged, and no refusal repeats it.

When the terminal closes (Ctrl-C), the daemon stops answering it, and the login carries on
for the clients that wait for it. The pure part (the lines, and the daemon's answer to a
paste) is here for both ends; the daemon's side of the connection is `serve_join`, the
terminal's is cli/joined_login.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, NamedTuple

from mcp_bridge.daemon import hello
from mcp_bridge.errors import BridgeError

if TYPE_CHECKING:
    from mcp_bridge.auth.login_coordinator import LoginCoordinator
    from mcp_bridge.engine.registry import CredentialRegistry

__all__ = [
    "LoggedIn",
    "PasteRefused",
    "SignInShown",
    "judge_pasted_line",
    "parse_join_line",
    "parse_pasted_line",
    "pasted_line",
    "serve_join",
]

log = logging.getLogger(__name__)

_PASTED = "pasted"
_TOO_LONG = "The pasted line is too long to be a sign-in address"


class SignInShown(NamedTuple):
    """The URL the joined login waits at (and a device login's code)."""

    url: str
    code: str | None
    tab: bool  # the daemon opens browser tabs
    paste: bool = False  # the login takes the address its browser ends on, pasted


class LoggedIn(NamedTuple):
    """The joined login's outcome: tokens kept in the vault."""

    issuer: str
    scopes: tuple[str, ...]
    refresh_token: bool


class PasteRefused(NamedTuple):
    """Why the login did not take a pasted address (it waits on)."""

    what: str
    next_step: str


def sign_in_line(shown: SignInShown) -> bytes:
    return hello.ok_reply(sign_in=shown._asdict())


def logged_in_line(done: LoggedIn) -> bytes:
    return hello.ok_reply(logged_in={**done._asdict(), "scopes": list(done.scopes)})


def paste_refused_line(refused: PasteRefused) -> bytes:
    return hello.ok_reply(paste_refused=refused._asdict())


def pasted_line(url: str) -> bytes:
    """The terminal's line carrying the address the user pasted."""
    return hello.encode({_PASTED: url})


def parse_join_line(line: bytes) -> SignInShown | LoggedIn | PasteRefused:
    """A line of the daemon's after `joined`. HelloError: the daemon's error (the login
    failed: its message and next step), or a line that is none of ours."""
    doc = hello.parse_reply(line)
    shown, done, refused = doc.get("sign_in"), doc.get("logged_in"), doc.get("paste_refused")
    if isinstance(shown, dict):
        url, code, tab = shown.get("url"), shown.get("code"), shown.get("tab")
        paste = shown.get("paste", False)
        if (
            isinstance(url, str)
            and isinstance(code, str | None)
            and isinstance(tab, bool)
            and isinstance(paste, bool)
        ):
            return SignInShown(url, code, tab, paste)
    if isinstance(refused, dict):
        what, next_step = refused.get("what"), refused.get("next_step")
        if isinstance(what, str) and isinstance(next_step, str):
            return PasteRefused(what, next_step)
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


def parse_pasted_line(line: bytes) -> str:
    """The address a terminal's line carries. HelloError for any other line, whose
    message never repeats the line: it may carry an authorization code."""
    role = "The terminal's line"
    try:
        doc = hello.hello_object(line, role)
    except hello.HelloError:
        raise hello.HelloError(f"{role} is not an mcp-bridge line") from None
    hello.check_version(doc, role)
    url = doc.get(_PASTED)
    if not isinstance(url, str):
        raise hello.HelloError(f"{role} carries no pasted address")
    try:
        url.encode()  # JSON may carry a lone surrogate, which no address holds
    except UnicodeEncodeError:
        raise hello.HelloError("The pasted address is not text", "Paste it again") from None
    return url


def judge_pasted_line(line: bytes, take: Callable[[str], None]) -> PasteRefused | None:
    """The daemon's decision on a terminal's line: None when `take` (the running login's
    judge of a pasted address, LoginCoordinator.take_pasted) took the address it carries,
    and the login's end will say the rest; else why it was not taken."""
    try:
        take(parse_pasted_line(line))
    except (hello.HelloError, BridgeError) as exc:
        return PasteRefused(exc.what, exc.next_step)
    return None


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
    # Ends when the terminal hangs up (EOF): it has stopped waiting.
    terminal = asyncio.ensure_future(_take_pastes(url, credentials.logins, reader, say))
    try:
        await asyncio.wait((login, shown, terminal), return_when=asyncio.FIRST_COMPLETED)
        if shown.done() and not login.done() and not terminal.done():
            sign_in_url, _ = shown.result()
            logins = credentials.logins
            tab = logins.settings.open_browser
            shown_now = SignInShown(sign_in_url, logins.pending_code, tab, logins.takes_pasted)
            await say(sign_in_line(shown_now))
            await asyncio.wait((login, terminal), return_when=asyncio.FIRST_COMPLETED)
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
        for task in (login, shown, terminal):
            task.cancel()
        await asyncio.gather(login, shown, terminal, return_exceptions=True)


async def _take_pastes(
    url: str,
    logins: LoginCoordinator,
    reader: asyncio.StreamReader,
    say: Callable[[bytes], Awaitable[None]],
) -> None:
    """Hand each address the terminal pastes to the running login, and say why one was
    not taken, until the terminal hangs up."""
    while True:
        try:
            line = await reader.readline()
        except ValueError:  # past the daemon's line limit: no address is that long
            refused: PasteRefused | None = PasteRefused(_TOO_LONG, "Paste the address alone")
        else:
            if not line:
                return
            refused = judge_pasted_line(line, logins.take_pasted)
        if refused is None:
            log.info("the login to %s took an address pasted in a terminal", url)
            continue
        log.info("refused an address pasted for the login to %s: %s", url, refused.what)
        await say(paste_refused_line(refused))
