"""The OAuth flags `run` and `login` share, and their values as a plain mapping.

Standard library only: `run` is what desktop hosts start, and its shim hands these values
to the daemon without importing the OAuth machinery (`OAuthSettings.from_flags` checks them
where they are used).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

CLIENT_SECRET_ENV = "MCP_BRIDGE_CLIENT_SECRET"
IDP_CLIENT_SECRET_ENV = "MCP_BRIDGE_IDP_CLIENT_SECRET"
CALLBACK_HOSTS = ("127.0.0.1", "localhost")
GRANTS = ("authorization-code", "client-credentials", "enterprise")  # auth.settings.Grant
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
    "use_id_token",
    "no_resource",
    "login_timeout",
    "login_wait",
    "grant",
    "client_key_file",
    "client_key_id",
    "idp_issuer",
    "idp_client_id",
    "idp_client_key_file",
    "id_token_file",
)


def _absolute_path(text: str) -> str:
    """A file flag's value as an absolute path: the daemon that reads the file, and the
    client that runs a named server, work in other directories than this shell."""
    return os.path.abspath(os.path.expanduser(text))


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
        "--use-id-token",
        action="store_true",
        help="send the OpenID Connect ID token instead of the access token (servers "
        "behind AWS Cognito often accept only that)",
    )
    group.add_argument(
        "--no-resource",
        action="store_true",
        help="leave out the RFC 8707 resource parameter (for an authorization server that "
        "refuses it with invalid_target, e.g. Microsoft Entra ID)",
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
    grants = parser.add_argument_group(
        "Grants without a browser (docs/grants.md)",
        "--grant client-credentials: the client's own token, for services and CI "
        f"(--client-id, with {CLIENT_SECRET_ENV} or --client-key-file). --grant enterprise: "
        "an ID token from your organisation's identity provider exchanged for a token "
        f"(--idp-issuer, --idp-client-id with {IDP_CLIENT_SECRET_ENV} or "
        "--idp-client-key-file, --id-token-file).",
    )
    grants.add_argument(
        "--grant",
        choices=GRANTS,
        default=GRANTS[0],
        help="how tokens are obtained (default: authorization-code, a user signs in)",
    )
    grants.add_argument(
        "--client-key-file",
        type=_absolute_path,
        metavar="PATH",
        help="PEM private key (P-256 or RSA) to authenticate the client with "
        "(private_key_jwt) instead of a secret",
    )
    grants.add_argument(
        "--client-key-id", metavar="KID", help="the key's id (kid), if the server wants one"
    )
    grants.add_argument(
        "--idp-issuer", metavar="URL", help="your organisation's identity provider (issuer URL)"
    )
    grants.add_argument("--idp-client-id", help="this client's id at the identity provider")
    grants.add_argument(
        "--idp-client-key-file",
        type=_absolute_path,
        metavar="PATH",
        help=f"PEM private key for the identity provider, instead of {IDP_CLIENT_SECRET_ENV}",
    )
    grants.add_argument(
        "--id-token-file",
        type=_absolute_path,
        metavar="PATH",
        help="a file holding your ID token from the identity provider, read at each "
        "exchange (keep it current: it is not refreshed here)",
    )


def oauth_flags(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, object]:
    """The OAuth flags' values by dest; the client secret from MCP_BRIDGE_CLIENT_SECRET when
    not given in argv (where every local user can read it with `ps`), the identity
    provider's from MCP_BRIDGE_IDP_CLIENT_SECRET only."""
    flags: dict[str, object] = {name: getattr(args, name) for name in _DESTS}
    flags["client_secret"] = args.client_secret or environ.get(CLIENT_SECRET_ENV) or None
    flags["idp_client_secret"] = environ.get(IDP_CLIENT_SECRET_ENV) or None
    return flags
