"""The `mcp-bridge` command: an argparse front, one small function per subcommand."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    from mcp_bridge.cli.app import run_cli

    return run_cli(sys.argv[1:] if argv is None else argv)
