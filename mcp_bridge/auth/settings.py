"""OAuthSettings: what the user configured about logging in to one server (flags, config
file), as one frozen value. Parsed at the CLI edge (cli/auth_commands.py); read by the
login flow and the credential provider. Knows no HTTP and no vault.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self

from mcp_bridge.auth.loopback_sockets import DEFAULT_CALLBACK_TIMEOUT_S, CallbackHost
from mcp_bridge.auth.registration import PreRegisteredClient, check_cimd_url
from mcp_bridge.errors import ConfigError

__all__ = ["DEFAULT_LOGIN_WAIT_S", "OAuthSettings"]

# How long a request that triggered a browser login waits for it before failing with
# "finish signing in, then retry" (the strictest hosts give a tools/call 60 s, see
# docs/desktop-hosts.md; a request must answer inside that, the login carries on meanwhile).
DEFAULT_LOGIN_WAIT_S = 30.0


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
    timeout_s: float = DEFAULT_CALLBACK_TIMEOUT_S  # how long a login waits for the browser
    login_wait_s: float = DEFAULT_LOGIN_WAIT_S  # how long a request waits for a login

    def __post_init__(self) -> None:
        # Refuse a bad CIMD URL where the flag is read, before any request: obtain_client
        # checks it only when an AS advertises CIMD, so it could go unnoticed until then.
        if self.client_metadata_url is not None:
            check_cimd_url(self.client_metadata_url)

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
            timeout_s=float(timeout_s),
            login_wait_s=float(wait_s),
        )

    def pre_registered(self) -> PreRegisteredClient | None:
        if self.client_id is None:
            return None
        return PreRegisteredClient(
            client_id=self.client_id, client_secret=self.client_secret, issuer=self.client_issuer
        )


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
