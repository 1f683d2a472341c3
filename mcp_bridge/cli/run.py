"""`mcp-bridge run URL`: the stdio command a desktop client launches."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import re
import signal
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mcp_bridge.cli.auth_commands import add_oauth_arguments, oauth_settings_from
from mcp_bridge.cli.log_setup import LEVELS, configure_logging, log_name_for
from mcp_bridge.errors import ConfigError
from mcp_bridge.paths import bridge_paths
from mcp_bridge.protocol import TransportKind

if TYPE_CHECKING:
    from mcp_bridge.auth.provider import OAuthCredentials
    from mcp_bridge.auth.settings import OAuthSettings
    from mcp_bridge.bridge.connector import RemoteSettings
    from mcp_bridge.bridge.stdio import Wire

log = logging.getLogger(__name__)

# stdin EOF or SIGTERM to exit: hosts escalate to SIGKILL after a short wait, so closing the
# remote session (DELETE) gets this long at most.
SHUTDOWN_BUDGET_S = 0.8
# Hosts start copies they kill within about a second (Claude Desktop's era probe,
# hosts.md §2.1): a login waits this long before it registers or opens a browser.
LOGIN_GRACE_S = 1.5
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# RFC 9110 token characters for a header name.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
# Headers the transport sets from the protocol itself: a --header must not replace them
# (spec: Accept must list both types; the MCP headers must match the body).
_PROTOCOL_HEADERS = frozenset(
    name.lower()
    for name in (
        "Accept",
        "Content-Type",
        "Content-Length",
        "Host",
        "Last-Event-ID",
        "MCP-Protocol-Version",
        "Mcp-Session-Id",
        "Mcp-Method",
        "Mcp-Name",
    )
)


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    run = commands.add_parser(
        "run",
        help="relay MCP between stdio and a remote server (what a desktop client launches)",
        description="Relay MCP between this process's stdio and a remote MCP server.",
    )
    run.add_argument("url", help="the remote MCP endpoint, e.g. https://mcp.example.com/mcp")
    run.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra HTTP header on every request; ${VAR} in VALUE reads the environment",
    )
    run.add_argument(
        "--transport",
        choices=[kind.value for kind in TransportKind],
        default=TransportKind.AUTO.value,
        help="how to reach the remote (default: auto-detect)",
    )
    run.add_argument(
        "--log-level",
        choices=LEVELS,
        default="error",
        help="what reaches stderr (default: errors only; hosts show stderr to users, and some "
        "flag any line as a failure); the log file has info and up",
    )
    run.add_argument(
        "--max-message-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="largest stdin message accepted (default 64 MiB)",
    )
    add_oauth_arguments(run)
    run.set_defaults(handler=run_command)


def parse_headers(specs: list[str], environ: Mapping[str, str]) -> dict[str, str]:
    """`['Authorization: Bearer ${TOKEN}']` -> `{'Authorization': 'Bearer <value of TOKEN>'}`.

    Raises ConfigError for a malformed header or an unset variable; the message never
    includes a header's value, which is often a secret.
    """
    headers: dict[str, str] = {}
    for spec in specs:
        name, colon, value = spec.partition(":")
        name = name.strip()
        if not colon or not _HEADER_NAME.match(name):
            raise ConfigError(
                f"--header {name or spec[:20]!r} is not of the form 'Name: value'",
                next_step="Write it as --header 'Name: value'",
            )
        if name.lower() in _PROTOCOL_HEADERS or name.lower().startswith("mcp-param-"):
            raise ConfigError(
                f"--header {name!r} is set by the MCP protocol itself",
                next_step="Leave it out; mcp-bridge sends the right value on every request",
            )

        def expand(match: re.Match[str], header: str = name) -> str:
            variable = match.group(1)
            if variable not in environ:
                raise ConfigError(
                    f"--header {header!r} uses ${{{variable}}}, which is not set",
                    next_step=f"Set {variable} in the environment the client launches us with",
                )
            return environ[variable]

        expanded = _ENV_REFERENCE.sub(expand, value.strip())
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in expanded):
            raise ConfigError(f"--header {name!r} has a control character in its value")
        headers[name] = expanded
    return headers


def run_command(args: argparse.Namespace) -> int:
    # Flags are checked before stdio is claimed, so a mistake shows as a plain message.
    from mcp_bridge.auth.urlpolicy import UrlPolicy
    from mcp_bridge.bridge.connector import RemoteSettings
    from mcp_bridge.bridge.stdio import claim_stdio

    # https, or http to a loopback host (--allow-http for others): the tokens and --header
    # values this process sends must not cross a network in clear text (spec §3.12).
    UrlPolicy.for_server(args.url, allow_http=args.allow_http)
    headers = parse_headers(args.header, os.environ)
    oauth = None if _has_authorization(headers) else oauth_settings_from(args)
    settings = RemoteSettings(
        url=args.url, transport=TransportKind(args.transport), headers=headers
    )
    wire = claim_stdio()
    paths = bridge_paths()
    configure_logging(stderr_level=args.log_level, log_file=paths.log_file(log_name_for(args.url)))
    asyncio.run(_serve(wire, settings, oauth, max_line_bytes=args.max_message_bytes))
    return 0


def _oauth_credentials(url: str, oauth: OAuthSettings) -> OAuthCredentials:
    from mcp_bridge.auth.provider import OAuthCredentials
    from mcp_bridge.store.selection import open_vault

    # Interactive: a request that meets a 401 starts the browser login itself (once, for
    # every request and every process waiting on it), and fails with what to do if it takes
    # too long. The grace keeps a host's throwaway probe copy from opening a browser tab.
    return OAuthCredentials(url, oauth, open_vault(), interactive=True, login_grace_s=LOGIN_GRACE_S)


def _has_authorization(headers: Mapping[str, str]) -> bool:
    """A static `Authorization` header means the user manages credentials: no OAuth."""
    return any(name.lower() == "authorization" for name in headers)


async def _serve(
    wire: Wire, settings: RemoteSettings, oauth: OAuthSettings | None, *, max_line_bytes: int
) -> None:
    from mcp_bridge.bridge.connector import choose_translator, open_remote
    from mcp_bridge.bridge.session import BridgeSession
    from mcp_bridge.bridge.stdio import StdioChannel

    credentials = None
    if oauth is not None:
        from mcp_bridge.auth.on_demand import OnDemandCredentials

        credentials = OnDemandCredentials(lambda: _oauth_credentials(settings.url, oauth))
        settings = dataclasses.replace(settings, credentials=credentials)
    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    channel = StdioChannel(wire, max_line_bytes=max_line_bytes)
    session = BridgeSession(
        channel,
        lambda first, deliver: open_remote(settings, first, deliver),
        choose_translator,
        remote_url=settings.url,
    )
    try:
        await session.run()
    except asyncio.CancelledError:
        main.uncancel()  # we asked for this cancellation; let the clean-up below run
        log.info("terminated by signal")
    finally:
        with contextlib.suppress(TimeoutError, asyncio.CancelledError):
            async with asyncio.timeout(SHUTDOWN_BUDGET_S):
                await session.aclose()
                await channel.aclose()
                if credentials is not None:
                    await credentials.aclose()
