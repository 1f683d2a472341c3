"""What `mcp-bridge status` and the daemon's status page show, built once for both: the
bridge's files, the named servers, the vault, each stored login and what the daemon knows
of its refreshes. A JSON-able report (`status --json` prints it as it is) and, for a table,
one row per server. Never a token or a secret.

The daemon part is an input: the command asks the daemon over its socket, the daemon
describes itself (`DaemonServer.describe`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mcp_bridge.paths import BridgePaths

if TYPE_CHECKING:
    from mcp_bridge.store.base import CredentialVault

__all__ = [
    "Report",
    "ServerRow",
    "build_report",
    "refresh_text",
    "scopes_text",
    "server_rows",
    "token_text",
]

Report = dict[str, Any]  # JSON: what `status --json` prints; the views are made from it


async def build_report(paths: BridgePaths, vault: CredentialVault, daemon: Report) -> Report:
    """The whole report. `daemon`: `{"running": False, "why": ...}`, or `{"running": True}`
    with the daemon's status reply (pid, uptime_s, connections, servers, ...)."""
    report: Report = {
        "config_dir": str(paths.config_dir),
        "servers_file": str(paths.servers_file),
        "servers": named_servers(paths),
        "log_dir": str(paths.log_dir),
        "daemon": daemon,
        "vault": vault.describe(),
        "logins": await _logins(vault),
    }
    _add_refreshes(report)
    _add_renewals(report)
    return report


def named_servers(paths: BridgePaths) -> list[Report] | str:
    """The servers named in servers.toml (name and URL), or why the file cannot be read."""
    from mcp_bridge.errors import ConfigError
    from mcp_bridge.server_config import load_servers

    try:
        servers = load_servers(paths.servers_file)
    except ConfigError as exc:
        return str(exc)
    named: list[Report] = []
    for name, entry in servers.items():
        server: Report = {"name": name, "url": entry.get("url")}
        if entry.get("grant") not in (None, "authorization-code"):
            server["grant"] = entry["grant"]
        named.append(server)
    return named


async def _logins(vault: CredentialVault) -> list[Report]:
    from mcp_bridge.auth.auth_records import SERVERS, read_client, read_context, read_tokens
    from mcp_bridge.auth.urlpolicy import UrlPolicy

    logins: list[Report] = []
    async with vault.transaction() as txn:
        for server in txn.keys(SERVERS):
            # Records are read back under a permissive policy: this only describes them.
            policy = UrlPolicy.for_server(server, allow_http=True, allow_private=True)
            context = read_context(txn, server, mcp_url=server, policy=policy)
            if context is None:
                logins.append({"server": server, "unreadable": True})
                continue
            client = read_client(txn, context.issuer)
            stored = read_tokens(txn, context)
            login: Report = {"server": server, "issuer": context.issuer, "tokens": None}
            if client is not None:
                login["client"] = {"id": client.client_id, "method": client.method.value}
            if stored is not None:
                tokens = stored.tokens
                login["tokens"] = {
                    "scopes": list(tokens.scopes),
                    "refreshable": bool(tokens.refresh_token),
                    "expires_in_s": None
                    if tokens.expires_at is None
                    else round(tokens.expires_at - time.time()),
                }
            logins.append(login)
    return logins


def _add_refreshes(report: Report) -> None:
    """What the running daemon knows of each login's refreshes, on that login."""
    servers = report["daemon"].get("servers") or []
    known = {server.get("resource"): server for server in servers if isinstance(server, dict)}
    for login in report["logins"]:
        daemon_side = known.get(login["server"])
        if daemon_side is not None:
            login["refresh"] = {
                key: daemon_side.get(key)
                for key in ("refreshes", "last_refresh_s_ago", "last_failure")
            }


def _add_renewals(report: Report) -> None:
    """A login whose tokens a grant without a user renews (`--grant`, named in servers.toml
    or known to the daemon) needs no refresh token: the grant is simply made again."""
    grants: dict[str, str] = {}
    named = report["servers"] if isinstance(report["servers"], list) else []
    for server in named:
        if isinstance(server.get("url"), str) and server.get("grant"):
            grants[_resource_of(server["url"])] = server["grant"]
    for server in report["daemon"].get("servers") or []:
        if isinstance(server, dict) and server.get("grant"):
            grants[str(server.get("resource"))] = server["grant"]
    for login in report["logins"]:
        tokens = login.get("tokens")
        grant = grants.get(login["server"])
        if tokens is not None and grant is not None:
            tokens["renewed_by"] = grant


def _resource_of(url: str) -> str:
    """The canonical resource a login is kept under; the URL itself when it has none."""
    from mcp_bridge.auth.errors import AuthError
    from mcp_bridge.auth.urlpolicy import canonical_resource

    try:
        return canonical_resource(url)
    except (AuthError, ValueError):
        return url


@dataclass(frozen=True, slots=True)
class ServerRow:
    """One server of the status table: a named server, a stored login, or both (matched by
    canonical resource). `key` is that resource: what the page's buttons name."""

    key: str
    url: str
    name: str | None = None
    login: Report | None = None  # the report's login entry, when the vault holds one

    @property
    def login_state(self) -> str:
        if self.login is None:
            return "not logged in"
        if self.login.get("unreadable"):
            return "unreadable record: log in again"
        if self.login.get("tokens") is None:
            return "tokens lost: log in again"
        return "logged in"

    @property
    def tokens(self) -> Report | None:
        return None if self.login is None else self.login.get("tokens")

    @property
    def refresh(self) -> Report | None:
        return None if self.login is None else self.login.get("refresh")


def server_rows(report: Report) -> list[ServerRow]:
    """The named servers in servers.toml's order, each with its login, then the logins of
    servers no name points at."""
    logins = {login["server"]: login for login in report["logins"]}
    rows: list[ServerRow] = []
    named = report["servers"] if isinstance(report["servers"], list) else []
    for server in named:
        url = server.get("url")
        if not isinstance(url, str):
            continue
        key = _resource_of(url)
        rows.append(ServerRow(key, url, server.get("name"), logins.pop(key, None)))
    rows += [ServerRow(key, key, None, login) for key, login in logins.items()]
    return rows


# -- words both views use ---------------------------------------------------------------


def token_text(tokens: Report) -> str:
    """ "expires in 3599 s, refreshable" (or "..., renewed by repeating the
    client-credentials grant"), from a login's `tokens` entry."""
    left_s = tokens["expires_in_s"]
    if left_s is None:
        expiry = "no expiry given"
    else:
        expiry = f"expires in {left_s} s" if left_s > 0 else f"expired {-left_s} s ago"
    if tokens.get("renewed_by"):
        return f"{expiry}, renewed by repeating the {tokens['renewed_by']} grant"
    return f"{expiry}, {'refreshable' if tokens['refreshable'] else 'not refreshable'}"


def scopes_text(tokens: Report) -> str:
    return " ".join(tokens["scopes"]) or "(no scope named)"


def refresh_text(refresh: Report) -> str:
    """ "2 refresh(es), the last 40 s ago; the last attempt failed: ...", from a login's
    `refresh` entry (what the running daemon knows)."""
    count = refresh.get("refreshes") or 0
    ago = refresh.get("last_refresh_s_ago")
    text = f"{count} refresh(es)" + (f", the last {ago} s ago" if ago is not None else "")
    if refresh.get("last_failure"):
        text += f"; the last attempt failed: {refresh['last_failure']}"
    return text
