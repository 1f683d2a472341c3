"""`mcp-bridge login URL`, `logout URL` and `token URL`, and the OAuth flags `run` shares
(`add_oauth_arguments`, `oauth_settings_from`).

`token` is the one place a token is ever printed, on stdout, and only because the user
asked for it (for `curl -H "Authorization: Bearer $(mcp-bridge token URL)"`). Everything
else the commands say goes to stderr. A client secret is read from MCP_BRIDGE_CLIENT_SECRET
by preference: a secret in argv is visible to every user of the machine (`ps`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import threading
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from mcp_bridge.errors import ConfigError

if TYPE_CHECKING:
    from mcp_bridge.auth.provider import OAuthCredentials
    from mcp_bridge.auth.settings import OAuthSettings
    from mcp_bridge.store.base import CredentialVault

log = logging.getLogger(__name__)

CLIENT_SECRET_ENV = "MCP_BRIDGE_CLIENT_SECRET"
CALLBACK_HOSTS = ("127.0.0.1", "localhost")


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    login = commands.add_parser(
        "login",
        help="sign in to a remote MCP server in the browser and keep its tokens",
        description="Sign in to a remote MCP server (OAuth, in the browser) and store the "
        "tokens in the vault. In a terminal, the address the browser ends on may be pasted.",
    )
    login.add_argument("url", help="the remote MCP endpoint")
    add_oauth_arguments(login)
    login.set_defaults(handler=login_command)

    logout = commands.add_parser(
        "logout",
        help="forget a server's tokens (and revoke them at its authorization server)",
        description="Revoke the server's tokens where the authorization server offers "
        "revocation, then delete them from the vault. The client registration is kept: it "
        "belongs to the authorization server, which other servers may share.",
    )
    logout.add_argument("url", help="the remote MCP endpoint")
    logout.add_argument(
        "--no-revoke", action="store_true", help="only delete the local copy; tell no server"
    )
    logout.add_argument("--allow-http", action="store_true", help=argparse.SUPPRESS)
    logout.set_defaults(handler=logout_command)

    token = commands.add_parser(
        "token",
        help="print a fresh access token for a server on stdout (for curl)",
        description="Print a valid access token for the server on stdout, refreshing it if "
        "needed. Never opens a browser: run `mcp-bridge login URL` first.",
    )
    token.add_argument("url", help="the remote MCP endpoint")
    token.add_argument("--allow-http", action="store_true", help=argparse.SUPPRESS)
    token.set_defaults(handler=token_command)


def add_oauth_arguments(parser: argparse.ArgumentParser) -> None:
    """The OAuth flags, for `login` and `run`."""
    group = parser.add_argument_group("OAuth")
    group.add_argument("--client-id", help="a client id registered with the authorization server")
    group.add_argument(
        "--client-secret",
        help=f"its secret; better set {CLIENT_SECRET_ENV} (argv is visible to other users)",
    )
    group.add_argument(
        "--client-metadata-url",
        metavar="URL",
        help="an https client id metadata document to use as the client id (CIMD)",
    )
    group.add_argument(
        "--scope",
        action="append",
        default=[],
        help="scope(s) to ask for instead of the server's choice (repeatable, or space-separated)",
    )
    group.add_argument(
        "--authorize-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra authorization request parameter, e.g. prompt=consent (repeatable)",
    )
    group.add_argument(
        "--callback-port", type=int, default=0, help="fixed port for the login callback"
    )
    group.add_argument(
        "--callback-host",
        choices=CALLBACK_HOSTS,
        default="127.0.0.1",
        help="host name in the redirect URI (some servers accept only localhost)",
    )
    group.add_argument(
        "--allow-http",
        action="store_true",
        help="allow plain-http authorization servers off loopback (development only)",
    )
    group.add_argument(
        "--no-browser", action="store_true", help="print the sign-in URL instead of opening it"
    )
    group.add_argument(
        "--device",
        action="store_true",
        help="log in with a code typed on any device (RFC 8628), e.g. over SSH",
    )
    group.add_argument(
        "--login-timeout",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="how long to wait for the browser sign-in (default 300)",
    )


def oauth_settings_from(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> OAuthSettings:
    """OAuthSettings from parsed `add_oauth_arguments` flags; ConfigError for bad values."""
    from mcp_bridge.auth.loopback import CallbackHost
    from mcp_bridge.auth.settings import OAuthSettings

    env = os.environ if environ is None else environ
    params: list[tuple[str, str]] = []
    for spec in args.authorize_param:
        key, equals, value = spec.partition("=")
        if not equals or not key.strip():
            raise ConfigError(
                f"--authorize-param {spec!r} is not of the form KEY=VALUE",
                next_step="Write it as --authorize-param prompt=consent",
            )
        params.append((key.strip(), value))
    if not 0 <= args.callback_port <= 65535:
        raise ConfigError(
            f"--callback-port {args.callback_port} is not a port number",
            next_step="Use 1-65535, or leave it out for any free port",
        )
    if args.login_timeout <= 0:
        raise ConfigError("--login-timeout must be positive")
    scopes = tuple(dict.fromkeys(scope for spec in args.scope for scope in spec.split()))
    secret = args.client_secret or env.get(CLIENT_SECRET_ENV) or None
    if secret is not None and args.client_id is None:
        raise ConfigError(
            "A client secret was given without --client-id",
            next_step="Pass the client id it belongs to with --client-id",
        )
    return OAuthSettings(
        client_id=args.client_id,
        client_secret=secret,
        client_metadata_url=args.client_metadata_url,
        scopes=scopes,
        authorize_params=tuple(params),
        callback_port=args.callback_port,
        callback_host=CallbackHost(args.callback_host),
        allow_http=args.allow_http,
        open_browser=not args.no_browser,
        device=args.device,
        timeout_s=args.login_timeout,
    )


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
) -> OAuthCredentials:
    from mcp_bridge.auth.provider import OAuthCredentials

    return OAuthCredentials(
        url,
        settings,
        vault,
        interactive=interactive,
        background_refresh=False,  # a command lives seconds; nothing to keep fresh
        pasted_urls=_stdin_lines if paste else None,
    )


async def _stdin_lines() -> AsyncIterator[str]:
    """Lines typed into the terminal. The read happens in a daemon thread: a blocking read
    cannot be cancelled, and a daemon thread does not hold up the exit once the login ends
    (asyncio.to_thread's executor would be waited for at shutdown)."""
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[str | None] = asyncio.Queue()

    def read() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line)
        loop.call_soon_threadsafe(lines.put_nowait, None)

    threading.Thread(target=read, name="mcp-bridge-paste", daemon=True).start()
    while (line := await lines.get()) is not None:
        yield line


def login_command(args: argparse.Namespace) -> int:
    settings = oauth_settings_from(args)
    return asyncio.run(_login(args.url, settings, paste=sys.stdin.isatty()))


async def _login(url: str, settings: OAuthSettings, *, paste: bool) -> int:
    from mcp_bridge.store.selection import open_vault

    vault = open_vault()
    await vault.check()  # before the browser: a login that cannot be stored is wasted
    credentials = _credentials(url, settings, vault, interactive=True, paste=paste)
    try:
        result = await credentials.login()
    finally:
        await credentials.aclose()
    scopes = " ".join(result.tokens.scopes) or "the server's default scopes"
    refresh = "with" if result.tokens.refresh_token else "WITHOUT"
    _say(f"logged in to {url} at {result.context.issuer} ({scopes}), {refresh} a refresh token")
    return 0


def logout_command(args: argparse.Namespace) -> int:
    from mcp_bridge.auth.settings import OAuthSettings

    settings = OAuthSettings(allow_http=args.allow_http)
    return asyncio.run(_logout(args.url, settings, revoke=not args.no_revoke))


async def _logout(url: str, settings: OAuthSettings, *, revoke: bool) -> int:
    from mcp_bridge.store.selection import open_vault

    credentials = _credentials(url, settings, open_vault(), interactive=False)
    try:
        await credentials.manager.load()
        if credentials.manager.tokens is None:
            _say(f"no stored login for {url}; nothing to do")
            return 0
        revoked = await credentials.manager.forget(revoke=revoke)
    finally:
        await credentials.aclose()
    at_server = "revoked at the authorization server and " if revoked else ""
    _say(f"tokens for {url} {at_server}deleted")
    return 0


def token_command(args: argparse.Namespace) -> int:
    from mcp_bridge.auth.settings import OAuthSettings

    settings = OAuthSettings(allow_http=args.allow_http)
    token = asyncio.run(_token(args.url, settings))
    sys.stdout.write(token + "\n")  # the one deliberate place a token is shown
    sys.stdout.flush()
    return 0


async def _token(url: str, settings: OAuthSettings) -> str:
    from mcp_bridge.store.selection import open_vault

    credentials = _credentials(url, settings, open_vault(), interactive=False)
    try:
        tokens = await credentials.manager.fresh_tokens()
    finally:
        await credentials.aclose()
    return tokens.access_token
