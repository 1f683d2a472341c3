"""The argument parser and the edge handler: every subcommand is a small function that
returns an exit code; a BridgeError becomes one clear line on stderr, never a traceback."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from mcp_bridge import __version__
from mcp_bridge.cli.log_setup import LEVELS
from mcp_bridge.errors import BridgeError, ConfigError

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mcp-bridge",
        description="Connect stdio MCP clients to remote, OAuth-protected MCP servers.",
    )
    parser.add_argument("--version", action="version", version=f"mcp-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="relay MCP between stdio and a remote server (what a desktop client launches)",
        description="Relay MCP between this process's stdio and a remote MCP server.",
    )
    run.add_argument("url", help="the remote MCP endpoint, e.g. https://mcp.example.com/mcp")
    run.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'NAME: VALUE'",
        help="extra HTTP header on every request; ${VAR} in VALUE reads the environment",
    )
    run.add_argument(
        "--transport",
        choices=("auto", "streamable-http", "sse"),
        default="auto",
        help="how to reach the remote (default: auto-detect)",
    )
    run.add_argument("--log-level", choices=LEVELS, default="warning", help="stderr log level")
    run.add_argument(
        "--max-message-bytes",
        type=int,
        default=64 * 1024 * 1024,
        help="largest stdin message accepted (default 64 MiB)",
    )
    run.set_defaults(handler=_run)

    demo = commands.add_parser(
        "demo",
        help="start a local demo server and show a client talking to it through the bridge",
    )
    demo.set_defaults(handler=_demo)
    return parser


def run_cli(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except ConfigError as exc:
        print(f"mcp-bridge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BridgeError as exc:
        print(f"mcp-bridge: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    from mcp_bridge.cli.run import run_command

    return run_command(args)


def _demo(args: argparse.Namespace) -> int:
    from mcp_bridge.cli.demo import demo_command

    return demo_command(args)
