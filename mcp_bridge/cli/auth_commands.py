"""`mcp-bridge login URL`, `logout URL` and `token URL`; each takes the name of a server
of servers.toml instead of its URL too (`mcp-bridge add`), with its stored OAuth flags.

`token` is the one place a token is ever printed, on stdout, and only because the user
asked for it (for `curl -H "Authorization: Bearer $(mcp-bridge token URL)"`). Everything
else the commands say goes to stderr. A client secret is read from MCP_BRIDGE_CLIENT_SECRET
by preference: a secret in argv is visible to every user of the machine (`ps`).
"""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from mcp_bridge.cli.oauth_flags import add_oauth_arguments, oauth_flags
from mcp_bridge.cli.server_flags import defer_defaults, resolve_server

if TYPE_CHECKING:
    from mcp_bridge.auth.provider import OAuthCredentials
    from mcp_bridge.auth.settings import OAuthSettings
    from mcp_bridge.auth.sign_in import Notify, PastedUrls
    from mcp_bridge.cli.login_progress import LoginProgress
    from mcp_bridge.daemon.login_join import LoggedIn, SignInShown
    from mcp_bridge.store.base import CredentialVault


_TARGET_HELP = "the remote MCP endpoint, or the name of a server added with `mcp-bridge add`"


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    login = commands.add_parser(
        "login",
        help="sign in to a remote MCP server in the browser and keep its tokens",
        description="Sign in to a remote MCP server (OAuth, in the browser) and store the "
        "tokens in the vault. In a terminal, the address the browser ends on may be pasted. "
        "With --grant client-credentials or enterprise, no browser: the grant is made and "
        "its token kept (with a client secret from MCP_BRIDGE_CLIENT_SECRET, which is kept "
        "in the vault too, so `run` needs it no more).",
    )
    login.add_argument("url", metavar="URL|NAME", help=_TARGET_HELP)
    add_oauth_arguments(login)
    defer_defaults(login)
    login.set_defaults(handler=login_command)

    logout = commands.add_parser(
        "logout",
        help="forget a server's tokens (and revoke them at its authorization server)",
        description="Revoke the server's tokens where the authorization server offers "
        "revocation, then delete them from the vault. The client registration is kept: it "
        "belongs to the authorization server, which other servers may share.",
    )
    logout.add_argument("url", metavar="URL|NAME", help=_TARGET_HELP)
    logout.add_argument(
        "--no-revoke", action="store_true", help="only delete the local copy; tell no server"
    )
    # Revocation authenticates the client as its grant did (a key, a secret): the flags,
    # or a named server's stored ones.
    add_oauth_arguments(logout)
    defer_defaults(logout)
    logout.set_defaults(handler=logout_command)

    token = commands.add_parser(
        "token",
        help="print a fresh access token for a server on stdout (for curl)",
        description="Print a valid access token for the server on stdout (the ID token for "
        "a login made with --use-id-token), refreshing it if needed. Never opens a browser: "
        "run `mcp-bridge login URL` first. With --grant client-credentials or enterprise (or "
        "a server added with one), the grant is made when there is no token to print.",
    )
    token.add_argument("url", metavar="URL|NAME", help=_TARGET_HELP)
    add_oauth_arguments(token)
    defer_defaults(token)
    token.set_defaults(handler=token_command)


def oauth_settings_from(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> OAuthSettings:
    """OAuthSettings from parsed OAuth flags (a named server's merged in first, in place);
    ConfigError for bad values or an unknown name."""
    from mcp_bridge.auth.settings import OAuthSettings

    env = os.environ if environ is None else environ
    resolve_server(args, env)
    return OAuthSettings.from_flags(oauth_flags(args, env))


def _say(text: str) -> None:
    sys.stderr.write(f"mcp-bridge: {text}\n")
    sys.stderr.flush()


def _credentials(
    url: str,
    settings: OAuthSettings,
    vault: CredentialVault,
    *,
    interactive: bool,
    paste: bool = False,
    notify: Notify | None = None,
) -> OAuthCredentials:
    from mcp_bridge.auth.provider import OAuthCredentials
    from mcp_bridge.auth.sign_in import notify_on_stderr

    return OAuthCredentials(
        url,
        settings,
        vault,
        interactive=interactive,
        background_refresh=False,  # a command lives seconds; nothing to keep fresh
        pasted_urls=_typed_lines(notify or notify_on_stderr) if paste else None,
        notify=notify or notify_on_stderr,
    )


def _typed_lines(notify: Notify) -> PastedUrls:
    """The lines typed into the terminal (`_stdin_lines`), refusals said through `notify`."""
    return functools.partial(_stdin_lines, notify)


async def _stdin_lines(notify: Notify) -> AsyncIterator[str]:
    """Lines typed into the terminal, as UTF-8 text. One that is not (line noise, a binary
    pasted by mistake) is refused through `notify` without being echoed, and reading goes
    on: an address is text whatever the locale, and sys.stdin would decode by the locale,
    raising in the reading thread (which then died, leaving later pastes unread) or
    smuggling lone surrogates on to be refused for another reason.

    The read happens in a daemon thread: a blocking read cannot be cancelled, and a daemon
    thread does not hold up the exit once the login ends (asyncio.to_thread's executor
    would be waited for at shutdown). It reads the descriptor itself: a thread blocked in
    sys.stdin.buffer holds that buffer's lock, which the interpreter's shutdown then
    cannot take (a fatal error)."""
    import asyncio
    import threading

    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes | None] = asyncio.Queue()

    def hand_over(line: bytes | None) -> bool:
        try:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        except RuntimeError:  # the loop has closed: the login is over, nobody reads on
            return False
        return True

    def read() -> None:
        typed = b""
        try:
            while chunk := os.read(sys.stdin.fileno(), 4096):
                *complete, typed = (typed + chunk).split(b"\n")
                if not all(hand_over(line) for line in complete):
                    return
        except (OSError, ValueError):  # the terminal went away, or stdin was closed
            pass
        if not typed or hand_over(typed):
            hand_over(None)

    threading.Thread(target=read, name="mcp-bridge-paste", daemon=True).start()
    while (line := await lines.get()) is not None:
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError:
            notify(f"mcp-bridge: {_NOT_TEXT}")


_NOT_TEXT = (
    "That line is not UTF-8 text, so it is no address; it was not taken. "
    "Paste the address the browser ends on"
)


def login_command(args: argparse.Namespace) -> int:
    import asyncio

    settings = oauth_settings_from(args)  # resolves a NAME into args.url
    return asyncio.run(_login(args.url, settings, paste=sys.stdin.isatty()))


async def _login(url: str, settings: OAuthSettings, *, paste: bool) -> int:
    import asyncio

    from mcp_bridge.cli.login_progress import LoginProgress
    from mcp_bridge.store.selection import open_vault

    vault = open_vault()
    await vault.check()  # before the browser: a login that cannot be stored is wasted
    progress = LoginProgress(url, sys.stderr, live=sys.stderr.isatty())
    joined = await _join_daemon_login(url, progress, paste=paste)
    if joined is not None:
        issuer, scopes, refresh_token = joined
    else:
        credentials = _credentials(
            url, settings, vault, interactive=True, paste=paste, notify=progress.say
        )
        shown = asyncio.create_task(progress.run(lambda: credentials.pending_url))
        try:
            result = await credentials.login()
        finally:
            shown.cancel()
            await asyncio.gather(shown, return_exceptions=True)
            await credentials.aclose()
        issuer, scopes = result.context.issuer, result.tokens.scopes
        refresh_token = result.tokens.refresh_token is not None
    granted = " ".join(scopes) or "the server's default scopes"
    if settings.grant.is_machine:
        _say(
            f"obtained a token for {url} at {issuer} ({granted}) with --grant "
            f"{settings.grant.value}; a new one is obtained the same way when it expires"
        )
        return 0
    refresh = "with" if refresh_token else "WITHOUT"
    _say(f"logged in to {url} at {issuer} ({granted}), {refresh} a refresh token")
    return 0


async def _join_daemon_login(url: str, progress: LoginProgress, *, paste: bool) -> LoggedIn | None:
    """The daemon's login to `url`, joined when it runs one (cli/joined_login.py): its URL
    is printed as the command's own would be, and with `paste` the address the browser
    ends on may be pasted as there. None: there is none to join."""
    import asyncio

    from mcp_bridge.cli.joined_login import join_daemon_login, joined_sign_in_text
    from mcp_bridge.paths import bridge_paths

    waiting_at: list[str] = []  # the URL, once the daemon said it

    def shown(sign_in: SignInShown) -> None:
        waiting_at[:] = [sign_in.url]
        progress.say(joined_sign_in_text(url, sign_in, paste=paste))

    live = asyncio.create_task(progress.run(lambda: waiting_at[0] if waiting_at else None))
    try:
        return await join_daemon_login(
            bridge_paths(),
            url,
            shown,
            pasted_urls=_typed_lines(progress.say) if paste else None,
            notify=progress.say,
        )
    finally:
        live.cancel()
        await asyncio.gather(live, return_exceptions=True)


def logout_command(args: argparse.Namespace) -> int:
    import asyncio

    settings = oauth_settings_from(args)  # resolves a NAME into args.url
    return asyncio.run(_logout(args.url, settings, revoke=not args.no_revoke))


async def _logout(url: str, settings: OAuthSettings, *, revoke: bool) -> int:
    from mcp_bridge.store.selection import open_vault

    credentials = _credentials(url, settings, open_vault(), interactive=False)
    try:
        await credentials.manager.load()
        if credentials.manager.tokens is None:
            _say(f"no stored login for {url}; nothing to do")
            return 0
        revoked = await credentials.logout(revoke=revoke)
    finally:
        await credentials.aclose()
    at_server = "revoked at the authorization server and " if revoked else ""
    _say(f"tokens for {url} {at_server}deleted")
    return 0


def token_command(args: argparse.Namespace) -> int:
    import asyncio

    settings = oauth_settings_from(args)  # resolves a NAME into args.url
    token = asyncio.run(_token(args.url, settings))
    sys.stdout.write(token + "\n")  # the one deliberate place a token is shown
    sys.stdout.flush()
    return 0


async def _token(url: str, settings: OAuthSettings) -> str:
    from mcp_bridge.auth.errors import LoginRequired
    from mcp_bridge.store.selection import open_vault

    credentials = _credentials(url, settings, open_vault(), interactive=False)
    try:
        try:
            tokens = await credentials.manager.fresh_tokens()
        except LoginRequired:
            if not settings.grant.is_machine:
                raise
            tokens = (await credentials.login()).tokens  # no user involved: just the grant
    finally:
        await credentials.aclose()
    if tokens.is_dpop and not tokens.sends_id_token:
        from mcp_bridge.errors import AuthError

        raise AuthError(
            f"The access token of {url} is bound to a DPoP key (RFC 9449): the server takes "
            "it only with a proof signed for each request, so it is of no use to curl",
            next_step=f"Reach the server through `mcp-bridge run {url}`",
        )
    return tokens.bearer_token  # the ID token with --use-id-token: what the server is sent
