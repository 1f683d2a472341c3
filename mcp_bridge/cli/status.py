"""`mcp-bridge status`: where the bridge keeps things, and the logins it holds.

Shows each stored login's server, issuer, client registration, scopes and how long its
access token has left; never a token or a secret.
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING, Any

from mcp_bridge.paths import BridgePaths, bridge_paths

if TYPE_CHECKING:
    from mcp_bridge.auth.auth_records import StoredTokens
    from mcp_bridge.store.base import CredentialVault


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    status = commands.add_parser(
        "status",
        help="show where credentials are kept and which servers have a login",
        description="Show the bridge's files, its credential vault, and each stored login "
        "(never a token).",
    )
    status.set_defaults(handler=status_command)


def status_command(args: argparse.Namespace) -> int:
    import asyncio

    paths = bridge_paths()
    print(f"config:  {paths.config_dir}")
    print(f"logs:    {paths.log_dir}")
    print(f"daemon:  {_describe_daemon(paths)}")
    from mcp_bridge.store.selection import open_vault

    vault = open_vault(paths=paths)
    print(f"vault:   {vault.describe()}")
    logins = asyncio.run(_stored_logins(vault))
    if not logins:
        print("logins:  none (`mcp-bridge login URL` adds one; `run` logs in when asked)")
        return 0
    print("logins:")
    for line in logins:
        print(f"  {line}")
    return 0


def _describe_daemon(paths: BridgePaths) -> str:
    from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon

    try:
        reply = ask_daemon(paths, "status")
    except DaemonUnavailable as exc:
        return f"not running ({exc.what}; `mcp-bridge run` starts it)"
    servers = reply.get("servers")
    count = len(servers) if isinstance(servers, list) else 0
    return (
        f"running, pid {reply.get('pid')}, up {reply.get('uptime_s')} s, "
        f"{reply.get('connections')} client(s) connected, {count} server(s) known"
    )


async def _stored_logins(vault: CredentialVault) -> list[str]:
    from mcp_bridge.auth.auth_records import SERVERS, read_client, read_context, read_tokens
    from mcp_bridge.auth.urlpolicy import UrlPolicy

    lines: list[str] = []
    async with vault.transaction() as txn:
        for server in txn.keys(SERVERS):
            # Records are read back under a permissive policy: this only describes them.
            policy = UrlPolicy.for_server(server, allow_http=True, allow_private=True)
            context = read_context(txn, server, mcp_url=server, policy=policy)
            if context is None:
                lines.append(f"{server}: unreadable record (log in again)")
                continue
            client = read_client(txn, context.issuer)
            stored = read_tokens(txn, context)
            lines.append(f"{server}")
            lines.append(f"    issuer {context.issuer}")
            if client is not None:
                lines.append(f"    client {client.client_id} ({client.method.value})")
            lines.append(f"    {_describe_tokens(stored)}")
    return lines


def _describe_tokens(stored: StoredTokens | None) -> str:
    if stored is None:
        return "no tokens: log in again"
    tokens = stored.tokens
    scopes = " ".join(tokens.scopes) or "(no scope named)"
    refresh = "refreshable" if tokens.refresh_token else "not refreshable"
    if tokens.expires_at is None:
        expiry = "no expiry given"
    else:
        left_s = tokens.expires_at - time.time()
        expiry = f"expires in {left_s:.0f} s" if left_s > 0 else f"expired {-left_s:.0f} s ago"
    return f"access token: {expiry}, {refresh}; scopes {scopes}"
