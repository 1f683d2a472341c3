"""`mcp-bridge status [--json | --open]`: where the bridge keeps things, whether its daemon
runs, and each stored login: server, issuer, client registration, scopes, how long the
access token has left, and (from a running daemon) its refreshes. Never a token or a secret.
The report is engine/status_report.py's; this module has the text view. `--open` shows the
same in the browser: the daemon's status page (daemon/status_page.py).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from mcp_bridge.errors import BridgeError
from mcp_bridge.paths import BridgePaths, bridge_paths

if TYPE_CHECKING:
    from mcp_bridge.engine.status_report import Report


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    status = commands.add_parser(
        "status",
        help="show where credentials are kept, whether the daemon runs, which servers have a login",
        description="Show the bridge's files, its daemon, its credential vault, and each "
        "stored login (never a token).",
    )
    shown = status.add_mutually_exclusive_group()
    shown.add_argument("--json", action="store_true", help="print the report as JSON")
    shown.add_argument(
        "--open",
        action="store_true",
        help="open the daemon's status page (Login and Log out per server) in the browser, "
        "starting the daemon if none runs; prints the page's private address",
    )
    status.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace) -> int:
    import asyncio

    from mcp_bridge.engine.status_report import build_report
    from mcp_bridge.store.selection import open_vault

    paths = bridge_paths()
    if args.open:
        return _open_page(paths)
    report = asyncio.run(build_report(paths, open_vault(paths=paths), _daemon_report(paths)))
    print(json.dumps(report, indent=2) if args.json else "\n".join(_as_text(report)))
    return 0


def _open_page(paths: BridgePaths) -> int:
    """Ask the daemon (started if none runs) for its status page, print the page's
    address and open it in the browser."""
    import asyncio

    from mcp_bridge.auth.browser import open_in_browser
    from mcp_bridge.shim.connection import ask_current_daemon

    url = ask_current_daemon(paths, "page").get("url")
    if not isinstance(url, str):
        raise BridgeError(
            "The daemon answered without the status page's address",
            next_step="Run `mcp-bridge daemon stop`, then try again",
        )
    print(url, flush=True)
    if not asyncio.run(open_in_browser(url)):
        print("mcp-bridge: no browser could be started; open the address above", file=sys.stderr)
    return 0


def _daemon_report(paths: BridgePaths) -> Report:
    from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon

    try:
        reply = ask_daemon(paths, "status")
    except DaemonUnavailable as exc:
        return {"running": False, "why": exc.what}
    reply.pop("mcp-bridge", None)
    reply.pop("ok", None)
    return {"running": True, **reply}


def _as_text(report: Report) -> list[str]:
    from mcp_bridge.engine.status_report import refresh_text

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
            lines.append(f"      daemon: {refresh_text(login['refresh'])}")
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
    from mcp_bridge.engine.status_report import scopes_text, token_text

    if tokens is None:
        return "no tokens: log in again"
    return f"access token: {token_text(tokens)}; scopes {scopes_text(tokens)}"
