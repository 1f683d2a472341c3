"""The OAuth flags `run` and `login` share, and their values as a plain mapping.

Standard library only: `run` is what desktop hosts start, and its shim hands these values
to the daemon without importing the OAuth machinery (`OAuthSettings.from_flags` checks them
where they are used).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

CLIENT_SECRET_ENV = "MCP_BRIDGE_CLIENT_SECRET"
CALLBACK_HOSTS = ("127.0.0.1", "localhost")
# The dests of the flags below: the keys OAuthSettings.from_flags reads.
_DESTS = (
    "client_id",
    "client_secret",
    "client_metadata_url",
    "scope",
    "authorize_param",
    "callback_port",
    "callback_host",
    "allow_http",
    "no_browser",
    "device",
    "login_timeout",
    "login_wait",
)


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
    group.add_argument(
        "--login-wait",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long a request waits for a sign-in it started before it is answered "
        "with the sign-in URL and 'retry' (default 30; hosts give a call about 60 s)",
    )


def oauth_flags(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, object]:
    """The OAuth flags' values by dest; the client secret from MCP_BRIDGE_CLIENT_SECRET when
    not given in argv (where every local user can read it with `ps`)."""
    flags: dict[str, object] = {name: getattr(args, name) for name in _DESTS}
    flags["client_secret"] = args.client_secret or environ.get(CLIENT_SECRET_ENV) or None
    return flags
