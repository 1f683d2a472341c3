"""`mcp-bridge run URL|NAME`: the stdio command a desktop client launches.

Standard library only up to the point where the mode is known, so the command starts
fast: the flags (a named server's stored ones from servers.toml under them) become a
server profile (a JSON object: what the daemon's shim hands over its socket), and
`--no-daemon` serves it in this process through the engine.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mcp_bridge.cli.log_setup import LEVELS, configure_logging
from mcp_bridge.cli.oauth_flags import oauth_flags
from mcp_bridge.cli.server_flags import add_server_arguments, defer_defaults, resolve_server
from mcp_bridge.errors import ConfigError
from mcp_bridge.paths import BridgePaths, bridge_paths
from mcp_bridge.server_config import ENV_REFERENCE

if TYPE_CHECKING:
    from mcp_bridge.engine.profile import ServerProfile
    from mcp_bridge.process_stdio import Wire

# In this process, a host's throw-away probe copy (killed within about a second: Claude
# Desktop's era probe) would take a login it started, and its callback listener, with
# it: a login waits this long before it registers or opens a browser.
IN_PROCESS_LOGIN_GRACE_S = 1.5
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
    run.add_argument(
        "url",
        metavar="URL|NAME",
        help="the remote MCP endpoint, e.g. https://mcp.example.com/mcp, or the name of a "
        "server added with `mcp-bridge add` (flags given here win over its stored ones)",
    )
    add_server_arguments(run)
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
        help="largest message accepted from the client or the server (default 64 MiB)",
    )
    run.add_argument(
        "--no-daemon",
        action="store_true",
        help="serve in this process instead of through the per-user daemon "
        "(containers, debugging; logins and refreshes are then this process's own)",
    )
    defer_defaults(run)
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

        expanded = ENV_REFERENCE.sub(expand, value.strip())
        if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in expanded):
            raise ConfigError(f"--header {name!r} has a control character in its value")
        headers[name] = expanded
    return headers


def profile_json(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, object]:
    """The server profile `run`'s flags describe, as the JSON object
    `engine.profile.ServerProfile.from_json` reads: a named server's flags merged in first
    (`resolve_server`, in place). `${VAR}` in headers is expanded here, from the environment
    the host launched us with. Raises ConfigError for a bad header or an unknown name."""
    resolve_server(args, environ)
    headers = parse_headers(args.header, environ)
    return {
        "url": args.url,
        "transport": args.transport,
        "headers": headers,
        # A static `Authorization` header means the user manages credentials: no OAuth.
        "oauth": None if _has_authorization(headers) else oauth_flags(args, environ),
        "max_message_bytes": args.max_message_bytes,
        "allow_http": args.allow_http,
    }


def run_command(args: argparse.Namespace) -> int:
    # Flags are checked before stdio is claimed, so a mistake shows as a plain message.
    resolve_server(args, os.environ)  # a NAME becomes its URL and flags from here on
    doc = profile_json(args, os.environ)
    if args.no_daemon:
        return _run_in_process(args, doc)
    from mcp_bridge.auth.urlpolicy import UrlPolicy, canonical_resource
    from mcp_bridge.engine.answer_cache import AnswerCache
    from mcp_bridge.engine.cached_front import CachedFront
    from mcp_bridge.process_stdio import claim_stdio
    from mcp_bridge.shim.relay import ShimRelay

    UrlPolicy.for_server(args.url, allow_http=args.allow_http)
    paths = bridge_paths()
    cache = AnswerCache.load(paths.answer_cache_dir, canonical_resource(args.url))
    relay = ShimRelay(
        doc,
        paths,
        claim_stdio(),
        max_line_bytes=args.max_message_bytes,
        front=CachedFront(cache.get),
    )
    return relay.run()


def _run_in_process(args: argparse.Namespace, doc: dict[str, object]) -> int:
    import asyncio

    from mcp_bridge.engine.profile import ServerProfile
    from mcp_bridge.process_stdio import claim_stdio
    from mcp_bridge.server_log import log_name_for

    profile = ServerProfile.from_json(doc)
    wire = claim_stdio()
    paths = bridge_paths()
    configure_logging(stderr_level=args.log_level, log_file=paths.log_file(log_name_for(args.url)))
    asyncio.run(_serve_in_process(wire, profile, paths))
    return 0


def _has_authorization(headers: Mapping[str, str]) -> bool:
    return any(name.lower() == "authorization" for name in headers)


async def _serve_in_process(wire: Wire, profile: ServerProfile, paths: BridgePaths) -> None:
    """Serve the process's stdio through the engine until stdin ends or SIGTERM."""
    import asyncio
    import contextlib
    import logging
    import signal

    from mcp_bridge.bridge.stdio import StdioChannel
    from mcp_bridge.engine.registry import CredentialRegistry
    from mcp_bridge.engine.session import open_session

    main = asyncio.current_task()
    assert main is not None
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows loops
        loop.add_signal_handler(signal.SIGTERM, main.cancel)
    channel = StdioChannel(wire, max_line_bytes=profile.max_message_bytes)
    registry = CredentialRegistry(paths, login_grace_s=IN_PROCESS_LOGIN_GRACE_S)
    async with contextlib.aclosing(registry), open_session(channel, profile, registry) as session:
        try:
            await session.run()
        except asyncio.CancelledError:
            main.uncancel()  # we asked for this cancellation; let the clean-up run
            logging.getLogger(__name__).info("terminated by signal")
