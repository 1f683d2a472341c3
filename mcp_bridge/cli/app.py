"""The argument parser and the edge handler: every subcommand is a small function that
returns an exit code; a BridgeError becomes one clear line on stderr, never a traceback.

Each subcommand module has `register(commands)`, which adds its parser and sets `handler`;
the handler imports what it needs, so `mcp-bridge --help` stays fast. `run` is what hosts
start, often and under a deadline: it builds its own parser and imports no other module.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

from mcp_bridge import __version__
from mcp_bridge.errors import BridgeError, ConfigError

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2

# The modules of the subcommands, in the order `--help` lists them.
SUBCOMMANDS = (
    "run",
    "servers_command",
    "auth_commands",
    "status",
    "logs_command",
    "doctor_command",
    "daemon_command",
    "service",
    "install_command",
    "bundle_command",
    "demo",
)


class _HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, told the terminal's width: left to find it, argparse imports
    shutil, whose compression modules cost every shim ~0.6 MB of resident memory (the
    shim's budget is 15 MB)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, width=_terminal_columns() - 2)


def _terminal_columns() -> int:
    """What shutil.get_terminal_size() says: $COLUMNS, else the terminal's, else 80."""
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    stdout = sys.__stdout__
    try:
        return os.get_terminal_size(stdout.fileno()).columns if stdout else 80
    except (ValueError, OSError):  # not a terminal, or closed
        return 80


class _Parser(argparse.ArgumentParser):
    """Every parser, subcommands' included (argparse makes those of the parent's class)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _HelpFormatter)
        super().__init__(*args, **kwargs)


def build_parser(modules: tuple[str, ...] = SUBCOMMANDS) -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mcp-bridge",
        description="Connect stdio MCP clients to remote, OAuth-protected MCP servers.",
    )
    parser.add_argument("--version", action="version", version=f"mcp-bridge {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in modules:
        importlib.import_module(f"mcp_bridge.cli.{name}").register(commands)
    return parser


def run_cli(argv: list[str]) -> int:
    parser = build_parser(("run",) if argv[:1] == ["run"] else SUBCOMMANDS)
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
    except BrokenPipeError:
        # The reader of our output left (`mcp-bridge status | head`): nothing to say, and
        # Python's own flush at exit must not complain either.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_ERROR
