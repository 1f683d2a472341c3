"""OAuthSettings: what the user configured about logging in to one server (flags, config
file), as one frozen value. Parsed at the CLI edge (cli/auth_commands.py); read by the
login flow and the credential provider. Knows no HTTP and no vault.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcp_bridge.auth.loopback import DEFAULT_CALLBACK_TIMEOUT_S, CallbackHost
from mcp_bridge.auth.registration import PreRegisteredClient, check_cimd_url

__all__ = ["DEFAULT_LOGIN_WAIT_S", "OAuthSettings"]

# How long a request that triggered a browser login waits for it before failing with
# "finish signing in, then retry" (hosts.md §9.1: the strictest hosts give a tools/call
# 60 s; a request must answer inside that, the login itself carries on in the background).
DEFAULT_LOGIN_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class OAuthSettings:
    """How to log in to one MCP server. Every field has a working default: a public client
    registered dynamically (or via CIMD), a 127.0.0.1 callback on an ephemeral port."""

    client_id: str | None = None  # pre-registered client (spec §3.4 priority 1)
    client_secret: str | None = field(default=None, repr=False)
    client_issuer: str | None = None  # binds the pre-registered client to one AS (A14)
    client_metadata_url: str | None = None  # CIMD document URL (spec §3.4 priority 2)
    scopes: tuple[str, ...] = ()  # overrides the spec §3.7 choice when given
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

    def pre_registered(self) -> PreRegisteredClient | None:
        if self.client_id is None:
            return None
        return PreRegisteredClient(
            client_id=self.client_id, client_secret=self.client_secret, issuer=self.client_issuer
        )
