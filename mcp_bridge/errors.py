"""The errors mcp-bridge raises on purpose, grouped by who has to act.

    BridgeError
      ConfigError   flags or servers.toml        -> the user fixes a flag or a file
      AuthError     authorization server, login  -> often: log in again
      RemoteError   the MCP server or network    -> retry, or tell the server's owner
      VaultError    OS keyring or vault file     -> unlock or repair the store

Every message says what happened and, where there is one, the next step. No message ever
carries a token. One edge handler per entry point turns these into a JSON-RPC error or an
exit code; anything else reaching it is a bug and is logged with its traceback.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every deliberate mcp-bridge error."""

    def __init__(self, what: str, *, next_step: str = "") -> None:
        super().__init__(f"{what}. {next_step}" if next_step else what)
        self.what = what
        self.next_step = next_step


class ConfigError(BridgeError):
    """A flag, an environment variable or the config file is wrong."""


class AuthError(BridgeError):
    """Authorization failed: discovery, registration, login or token use. `sign_in_url`:
    where the user can finish the sign-in this error waits for (a client that can open
    URLs is handed it; see engine/front_channel.py)."""

    def __init__(self, what: str, *, next_step: str = "", sign_in_url: str | None = None) -> None:
        super().__init__(what, next_step=next_step)
        self.sign_in_url = sign_in_url


class RemoteError(BridgeError):
    """The remote MCP server or the network between us failed."""


class VaultError(BridgeError):
    """The credential vault or the OS keyring cannot be used."""
