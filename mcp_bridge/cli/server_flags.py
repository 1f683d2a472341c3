"""The flags a named server stores, and how a command resolves `NAME` or `URL` with them.

`run`, `login`, `logout` and `token` take a server's URL or the name of a server of
servers.toml. Their parsers default the storable flags to None ("not given") and keep the
flags' real defaults aside, so `resolve_server` can tell a flag given on the command line
(it wins) from one left out (the stored value, then the default): see
`server_config.merge_flags`. Standard library only: `run` resolves a name in the shim.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from mcp_bridge import server_config
from mcp_bridge.cli.oauth_flags import add_oauth_arguments
from mcp_bridge.paths import bridge_paths
from mcp_bridge.protocol import TransportKind

# Where a parser keeps the real defaults of the flags defer_defaults set to None.
_DEFAULTS = "flag_defaults"


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags a server profile is made of (`run` and `add`): --header, --transport and
    the OAuth flags. Call `defer_defaults` once every flag is added."""
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra HTTP header on every request; ${VAR} in VALUE reads the environment",
    )
    parser.add_argument(
        "--transport",
        choices=[kind.value for kind in TransportKind],
        default=TransportKind.AUTO.value,
        help="how to reach the remote (default: auto-detect)",
    )
    add_oauth_arguments(parser)


def defer_defaults(parser: argparse.ArgumentParser) -> None:
    """Default the parser's storable flags to None, keeping their real defaults in the
    parsed namespace, so that a stored value can come between the two."""
    kept = dict(parser.get_default(_DEFAULTS) or {})
    for dest in server_config.FLAG_FIELDS:
        default = parser.get_default(dest)
        if default is not None:
            kept[dest] = default
    parser.set_defaults(**dict.fromkeys(kept), **{_DEFAULTS: kept, "server_name": None})


def resolve_server(args: argparse.Namespace, environ: Mapping[str, str]) -> None:
    """Complete `args` in place. When `args.url` is a name: the URL and flags stored under
    it in servers.toml (found through `environ`'s MCP_BRIDGE_HOME) as the defaults of the
    flags given. Then the flags' own defaults for what is still unset. Calling it again
    changes nothing. ConfigError for an unknown name or a broken file."""
    stored: server_config.Entry = {}
    if getattr(args, "server_name", None) is None and server_config.is_name(args.url):
        path = bridge_paths(dict(environ)).servers_file
        stored = server_config.find_server(path, args.url)
        args.server_name = args.url
        args.url = stored["url"]
    given = {dest: getattr(args, dest) for dest in server_config.FLAG_FIELDS if dest in args}
    defaults = getattr(args, _DEFAULTS, {})
    for dest, value in server_config.merge_flags(given, stored, defaults).items():
        setattr(args, dest, value)
