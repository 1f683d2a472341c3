"""`mcp-bridge status [--json]`: where the bridge keeps things, whether its daemon runs,
and each stored login: server, issuer, client registration, scopes, how long the access
token has left, and (from a running daemon) its refreshes. Never a token or a secret.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from mcp_bridge.paths import BridgePaths, bridge_paths

if TYPE_CHECKING:
    from mcp_bridge.store.base import CredentialVault

Report = dict[str, Any]  # JSON: what `--json` prints, and the text view is made from


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    status = commands.add_parser(
        "status",
        help="show where credentials are kept, whether the daemon runs, which servers have a login",
        description="Show the bridge's files, its daemon, its credential vault, and each "
        "stored login (never a token).",
    )
    status.add_argument("--json", action="store_true", help="print the report as JSON")
    status.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace) -> int:
    import asyncio

    from mcp_bridge.store.selection import open_vault

    paths = bridge_paths()
    vault = open_vault(paths=paths)
    report: Report = {
        "config_dir": str(paths.config_dir),
        "servers_file": str(paths.servers_file),
        "servers": _named_servers(paths),
        "log_dir": str(paths.log_dir),
        "daemon": _daemon_report(paths),
        "vault": vault.describe(),
        "logins": asyncio.run(_logins(vault)),
    }
    _add_refreshes(report)
    print(json.dumps(report, indent=2) if args.json else "\n".join(_as_text(report)))
    return 0


def _named_servers(paths: BridgePaths) -> list[Report] | str:
    """The servers named in servers.toml (name and URL), or why the file cannot be read."""
    from mcp_bridge.errors import ConfigError
    from mcp_bridge.server_config import load_servers

    try:
        servers = load_servers(paths.servers_file)
    except ConfigError as exc:
        return str(exc)
    return [{"name": name, "url": entry.get("url")} for name, entry in servers.items()]


def _daemon_report(paths: BridgePaths) -> Report:
    from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon

    try:
        reply = ask_daemon(paths, "status")
    except DaemonUnavailable as exc:
        return {"running": False, "why": exc.what}
    reply.pop("mcp-bridge", None)
    reply.pop("ok", None)
    return {"running": True, **reply}


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


def _as_text(report: Report) -> list[str]:
    lines = [
        f"config:  {report['config_dir']}",
        f"servers: {_servers_text(report['servers'], report['servers_file'])}",
        f"logs:    {report['log_dir']}",
        f"daemon:  {_daemon_text(report['daemon'])}",
        f"vault:   {report['vault']}",
    ]
    if not report["logins"]:
        lines.append("logins:  none (`mcp-bridge login URL` adds one; `run` logs in when asked)")
        return lines
    lines.append("logins:")
    for login in report["logins"]:
        if login.get("unreadable"):
            lines.append(f"  {login['server']}: unreadable record (log in again)")
            continue
        lines.append(f"  {login['server']}")
        lines.append(f"      issuer {login['issuer']}")
        if "client" in login:
            lines.append(f"      client {login['client']['id']} ({login['client']['method']})")
        lines.append(f"      {_tokens_text(login['tokens'])}")
        if "refresh" in login:
            lines.append(f"      {_refresh_text(login['refresh'])}")
    return lines


def _servers_text(servers: list[Report] | str, path: str) -> str:
    if isinstance(servers, str):
        return f"{path} cannot be read: {servers}"
    if not servers:
        return f"none named (`mcp-bridge add NAME URL` writes {path})"
    return ", ".join(f"{server['name']} ({server['url']})" for server in servers)


def _daemon_text(daemon: Report) -> str:
    if not daemon["running"]:
        return f"not running ({daemon['why']}; `mcp-bridge run` starts it)"
    servers = daemon.get("servers")
    count = len(servers) if isinstance(servers, list) else 0
    return (
        f"running, pid {daemon.get('pid')}, up {daemon.get('uptime_s')} s, "
        f"{daemon.get('connections')} client(s) connected, {count} server(s) known"
    )


def _tokens_text(tokens: Report | None) -> str:
    if tokens is None:
        return "no tokens: log in again"
    scopes = " ".join(tokens["scopes"]) or "(no scope named)"
    refresh = "refreshable" if tokens["refreshable"] else "not refreshable"
    left_s = tokens["expires_in_s"]
    if left_s is None:
        expiry = "no expiry given"
    else:
        expiry = f"expires in {left_s} s" if left_s > 0 else f"expired {-left_s} s ago"
    return f"access token: {expiry}, {refresh}; scopes {scopes}"


def _refresh_text(refresh: Report) -> str:
    count = refresh.get("refreshes") or 0
    ago = refresh.get("last_refresh_s_ago")
    text = f"daemon: {count} refresh(es)" + (f", the last {ago} s ago" if ago is not None else "")
    if refresh.get("last_failure"):
        text += f"; the last attempt failed: {refresh['last_failure']}"
    return text
