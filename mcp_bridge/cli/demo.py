"""`mcp-bridge demo`: the whole journey on this machine, with no setup and no network.

It starts a local authorization server and an OAuth-protected MCP server
(mcp_bridge.demo.auth_server), runs `mcp-bridge run` in front of it, and plays a desktop
client on the bridge's stdio. The bridge meets a 401, discovers the authorization server,
registers itself, signs in through the browser (a consent page to click), and relays the
calls; the exchange is shown as it happens. `--no-browser` signs in with a built-in headless
browser and an auto-consenting server. Everything lives in a throwaway home directory.
"""

from __future__ import annotations

import argparse
from typing import Any


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    demo = commands.add_parser(
        "demo",
        help="log in to a local OAuth-protected demo server through the bridge and call it",
        description="The whole journey on this machine, with no setup and no network: a "
        "local authorization server and an OAuth-protected MCP server, `mcp-bridge run` in "
        "front of them, and a scripted desktop client on the bridge's stdio. You see the "
        "bridge meet a 401, find the authorization server, register, sign in through your "
        "browser (a consent page to click) and relay the calls. Nothing outside a "
        "throwaway directory is touched.",
    )
    demo.add_argument(
        "--no-browser",
        action="store_true",
        help="sign in with a built-in headless browser (the demo server consents by itself)",
    )
    demo.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    from mcp_bridge.cli.demo_journey import run_demo

    return run_demo(headless=args.no_browser)
