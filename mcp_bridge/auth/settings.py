"""OAuthSettings: what the user configured about logging in to one server (flags, config
file), as one frozen value. Parsed at the CLI edge (cli/auth_commands.py); read by the
login flow and the credential provider. Knows no HTTP and no vault.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self

from mcp_bridge.auth.client_identity import PreRegisteredClient
from mcp_bridge.auth.loopback_sockets import DEFAULT_CALLBACK_TIMEOUT_S, CallbackHost
from mcp_bridge.auth.registration import check_cimd_url
from mcp_bridge.errors import ConfigError

__all__ = ["DEFAULT_LOGIN_WAIT_S", "Grant", "OAuthSettings"]

# How long a request that triggered a browser login waits for it before failing with
# "finish signing in, then retry" (the strictest hosts give a tools/call 60 s, see
# docs/desktop-hosts.md; a request must answer inside that, the login carries on meanwhile).
DEFAULT_LOGIN_WAIT_S = 30.0


class Grant(enum.Enum):
    """How tokens are obtained (`--grant`; docs/grants.md)."""

    AUTHORIZATION_CODE = "authorization-code"  # the user signs in: browser or --device
    CLIENT_CREDENTIALS = "client-credentials"  # the client's own (OAuth 2.1 §4.2)
    ENTERPRISE = "enterprise"  # an IdP's ID token exchanged for an ID-JAG (RFC 8693, 7523)

    @property
    def is_machine(self) -> bool:
        """No browser and no user: the grant runs whenever a token is needed."""
        return self is not Grant.AUTHORIZATION_CODE


# The flags each grant takes beyond the common ones (--client-id, --scope, ...).
_GRANT_FLAGS: dict[Grant, frozenset[str]] = {
    Grant.AUTHORIZATION_CODE: frozenset(),
    Grant.CLIENT_CREDENTIALS: frozenset({"--client-key-file"}),
    Grant.ENTERPRISE: frozenset(
        {
            "--client-key-file",
            "--idp-issuer",
            "--idp-client-id",
            "--idp-client-key-file",
            "--id-token-file",
        }
    ),
}
_ENTERPRISE_NEEDS = ("--idp-issuer", "--idp-client-id", "--id-token-file")


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    """How to log in to one MCP server. Every field has a working default: a public client
    registered dynamically (or via CIMD), a 127.0.0.1 callback on an ephemeral port."""

    client_id: str | None = None  # pre-registered client (first choice, MCP Client Registration)
    client_secret: str | None = field(default=None, repr=False)
    client_issuer: str | None = None  # binds the pre-registered client to one AS (by issuer)
    client_metadata_url: str | None = None  # CIMD document URL (second choice)
    scopes: tuple[str, ...] = ()  # overrides MCP's "Scope Selection Strategy" when given
    authorize_params: tuple[tuple[str, str], ...] = ()  # extra authorization-request params
    callback_port: int = 0  # 0: ephemeral (RFC 8252 §7.3)
    callback_host: CallbackHost = CallbackHost.IPV4
    allow_http: bool = False  # plain-http AS endpoints off loopback (development only)
    open_browser: bool = True  # False: print the URL instead
    device: bool = False  # RFC 8628 device grant instead of the loopback redirect
    # Send the OpenID Connect ID token as the bearer instead of the access token (servers
    # behind AWS Cognito take only that: docs/oauth-in-the-wild.md §7).
    use_id_token: bool = False
    # RFC 8707 `resource` on the first try (MCP MUST); False: never (`--no-resource`), for an
    # AS known to refuse it, which would otherwise cost one refused try per issuer.
    send_resource: bool = True
    timeout_s: float = DEFAULT_CALLBACK_TIMEOUT_S  # how long a login waits for the browser
    login_wait_s: float = DEFAULT_LOGIN_WAIT_S  # how long a request waits for a login
    grant: Grant = Grant.AUTHORIZATION_CODE
    client_key_file: str | None = None  # private_key_jwt: an absolute path to a PEM key
    client_key_id: str | None = None  # its `kid`, when the AS picks keys by it
    # Enterprise-managed authorization: the IdP, our client there, and the ID token file.
    idp_issuer: str | None = None
    idp_client_id: str | None = None
    idp_client_secret: str | None = field(default=None, repr=False)
    idp_client_key_file: str | None = None
    id_token_file: str | None = None

    @property
    def login_kind(self) -> str:
        """The kind of login these settings make, for messages: "browser sign-in",
        "device sign-in", or "<grant> grant" for a grant without a user."""
        if self.grant.is_machine:
            return f"{self.grant.value} grant"
        return "device sign-in" if self.device else "browser sign-in"

    def login_command(self, server: str) -> str:
        """The `mcp-bridge login` command that makes this kind of login to `server` (a
        grant's client flags aside)."""
        if self.grant.is_machine:
            return f"mcp-bridge login {server} --grant {self.grant.value}"
        return f"mcp-bridge login {server}" + (" --device" if self.device else "")

    def __post_init__(self) -> None:
        # Refuse a bad CIMD URL where the flag is read, before any request: obtain_client
        # checks it only when an AS advertises CIMD, so it could go unnoticed until then.
        if self.client_metadata_url is not None:
            check_cimd_url(self.client_metadata_url)
        self._check_grant()

    @classmethod
    def from_flags(cls, flags: Mapping[str, object]) -> Self:
        """The settings the OAuth flags of `run` and `login` describe, keyed by their
        argparse dests (cli/oauth_flags.py): parsed in this process, or received from a
        shim over the daemon socket. Raises ConfigError naming the flag for a bad value."""
        params: list[tuple[str, str]] = []
        for spec in _strings(flags, "authorize_param"):
            key, equals, value = spec.partition("=")
            if not equals or not key.strip():
                raise ConfigError(
                    f"--authorize-param {spec!r} is not of the form KEY=VALUE",
                    next_step="Write it as --authorize-param prompt=consent",
                )
            params.append((key.strip(), value))
        port = _number(flags, "callback_port", 0)
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ConfigError(
                f"--callback-port {port} is not a port number",
                next_step="Use 1-65535, or leave it out for any free port",
            )
        timeout_s = _number(flags, "login_timeout", DEFAULT_CALLBACK_TIMEOUT_S)
        if not timeout_s > 0:
            raise ConfigError("--login-timeout must be positive")
        wait_s = _number(flags, "login_wait", DEFAULT_LOGIN_WAIT_S)
        if not wait_s > 0:
            raise ConfigError("--login-wait must be positive")
        client_id = _optional_string(flags, "client_id")
        secret = _optional_string(flags, "client_secret")
        if secret is not None and client_id is None:
            raise ConfigError(
                "A client secret was given without --client-id",
                next_step="Pass the client id it belongs to with --client-id",
            )
        host = _optional_string(flags, "callback_host") or CallbackHost.IPV4.value
        try:
            callback_host = CallbackHost(host)
        except ValueError:
            raise ConfigError(f"--callback-host {host!r} is not 127.0.0.1 or localhost") from None
        scopes = _strings(flags, "scope")
        grant = _grant(flags)
        return cls(
            client_id=client_id,
            client_secret=secret,
            client_metadata_url=_optional_string(flags, "client_metadata_url"),
            scopes=tuple(dict.fromkeys(scope for spec in scopes for scope in spec.split())),
            authorize_params=tuple(params),
            callback_port=port,
            callback_host=callback_host,
            allow_http=flags.get("allow_http") is True,
            open_browser=flags.get("no_browser") is not True,
            device=flags.get("device") is True,
            use_id_token=flags.get("use_id_token") is True,
            send_resource=flags.get("no_resource") is not True,
            timeout_s=float(timeout_s),
            login_wait_s=float(wait_s),
            grant=grant,
            client_key_file=_optional_string(flags, "client_key_file"),
            client_key_id=_optional_string(flags, "client_key_id"),
            idp_issuer=_optional_string(flags, "idp_issuer"),
            idp_client_id=_optional_string(flags, "idp_client_id"),
            idp_client_secret=_optional_string(flags, "idp_client_secret"),
            idp_client_key_file=_optional_string(flags, "idp_client_key_file"),
            id_token_file=_optional_string(flags, "id_token_file"),
        )

    def _check_grant(self) -> None:
        """The flags each grant needs, and none that is another grant's: ConfigError
        naming the flag. (A client secret may also come from the vault, where a login
        keeps it: it is looked for there when the grant runs.)"""
        given = {
            "--client-key-file": self.client_key_file,
            "--idp-issuer": self.idp_issuer,
            "--idp-client-id": self.idp_client_id,
            "--idp-client-key-file": self.idp_client_key_file,
            "--id-token-file": self.id_token_file,
        }
        for flag, value in given.items():
            if value is not None and flag not in _GRANT_FLAGS[self.grant]:
                owners = [g.value for g, flags in _GRANT_FLAGS.items() if flag in flags]
                raise ConfigError(
                    f"{flag} is for --grant {' or '.join(owners)}",
                    next_step="Add the --grant it belongs to, or leave it out",
                )
        if not self.grant.is_machine:
            return
        if self.device:
            raise ConfigError(
                f"--device signs a user in; --grant {self.grant.value} needs no sign-in",
                next_step="Leave out one of them",
            )
        if self.client_key_file is not None and self.client_secret is not None:
            raise ConfigError(
                "Both a client secret and --client-key-file were given",
                next_step="Authenticate with one of them: unset MCP_BRIDGE_CLIENT_SECRET "
                "(or --client-secret), or leave out --client-key-file",
            )
        if self.grant is Grant.CLIENT_CREDENTIALS:
            if self.client_id is None:
                raise ConfigError(
                    "--grant client-credentials needs the client's --client-id",
                    next_step="Pass the client id the authorization server's administrator "
                    "registered, with its secret (MCP_BRIDGE_CLIENT_SECRET) or key "
                    "(--client-key-file)",
                )
            return
        missing = [flag for flag in _ENTERPRISE_NEEDS if given[flag] is None]
        if missing:
            raise ConfigError(
                f"--grant enterprise needs {', '.join(missing)}",
                next_step="Name your organisation's identity provider (--idp-issuer URL), "
                "this client's id there (--idp-client-id) and the file that holds your ID "
                "token from it (--id-token-file)",
            )
        if self.idp_client_key_file is None and self.idp_client_secret is None:
            raise ConfigError(
                "--grant enterprise needs this client's credentials at the identity provider",
                next_step="Set MCP_BRIDGE_IDP_CLIENT_SECRET, or pass --idp-client-key-file",
            )
        if self.client_id is None and self.client_metadata_url is None:
            raise ConfigError(
                "--grant enterprise needs this client's id at the MCP server's "
                "authorization server",
                next_step="Pass --client-id (with its secret or --client-key-file), or "
                "--client-metadata-url",
            )

    def pre_registered(self) -> PreRegisteredClient | None:
        if self.client_id is None:
            return None
        return PreRegisteredClient(
            client_id=self.client_id, client_secret=self.client_secret, issuer=self.client_issuer
        )


def _grant(flags: Mapping[str, object]) -> Grant:
    value = _optional_string(flags, "grant") or Grant.AUTHORIZATION_CODE.value
    try:
        return Grant(value)
    except ValueError:
        choices = ", ".join(grant.value for grant in Grant)
        raise ConfigError(f"--grant {value!r} is not one of {choices}") from None


def _optional_string(flags: Mapping[str, object], name: str) -> str | None:
    value = flags.get(name)
    if value is None or isinstance(value, str):
        return value or None
    raise ConfigError(f"--{name.replace('_', '-')} must be text, not {type(value).__name__}")


def _strings(flags: Mapping[str, object], name: str) -> list[str]:
    value = flags.get(name) or []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise ConfigError(f"--{name.replace('_', '-')} must be a list of text values")


def _number(flags: Mapping[str, object], name: str, default: float) -> float:
    value = flags.get(name, default)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value
    raise ConfigError(f"--{name.replace('_', '-')} must be a number")
