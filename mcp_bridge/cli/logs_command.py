"""`mcp-bridge logs [NAME|URL] [-n LINES] [-f]`: the end of a server's log file (the one the
daemon and `run --no-daemon` both write for it), or of the daemon's own log without a
server; `-f` keeps printing what is added, across rotations, until Ctrl-C.

The logs hold no tokens or secrets (the bridge never logs them), so printing them is safe.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, NamedTuple, TextIO

from mcp_bridge.errors import ConfigError
from mcp_bridge.paths import bridge_paths

__all__ = ["LogPosition", "follow", "logs_command", "print_tail", "register"]

# How often `-f` looks for new lines; a person reading a log does not notice 0.3 s.
FOLLOW_POLL_S = 0.3


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    logs = commands.add_parser(
        "logs",
        help="show a server's log (or the daemon's), -f to follow it",
        description="Print the last lines of a server's log file, where the bridge writes "
        "what it did for that server (connections, logins, refreshes, errors). Without a "
        "server: the daemon's own log. Logs never hold tokens.",
    )
    logs.add_argument(
        "url",
        metavar="NAME|URL",
        nargs="?",
        help="a server added with `mcp-bridge add`, or its URL (default: the daemon's log)",
    )
    logs.add_argument(
        "-n", "--lines", type=int, default=40, metavar="N", help="how many lines (default 40)"
    )
    logs.add_argument(
        "-f", "--follow", action="store_true", help="keep printing new lines until Ctrl-C"
    )
    logs.set_defaults(handler=logs_command)


def logs_command(args: argparse.Namespace) -> int:
    from mcp_bridge import server_config
    from mcp_bridge.server_log import log_name_for

    if args.lines < 0:
        raise ConfigError("-n takes a number of lines, 0 or more")
    paths = bridge_paths()
    if args.url is None:
        path, about = paths.log_file("daemon"), "the daemon"
    else:
        url = args.url
        if server_config.is_name(url):
            url = server_config.find_server(paths.servers_file, url)["url"]
        path, about = paths.log_file(log_name_for(url)), url
    if not path.exists() and not args.follow:
        raise ConfigError(
            f"No log for {about} yet ({path})",
            next_step="It is written once the bridge has served that server: start it in "
            "your MCP client, or `mcp-bridge logs NAME -f` to wait for the first lines",
        )
    end = print_tail(path, args.lines, sys.stdout)
    if args.follow:
        follow(path, sys.stdout, end)
    return 0


def print_tail(path: Path, count: int, out: TextIO) -> LogPosition:
    """Print the last `count` whole lines of `path`; where they end (to follow from)."""
    try:
        with path.open("rb") as log:
            identity = _identity_of(os.fstat(log.fileno()))
            lines = deque(log, maxlen=count) if count else deque(log, maxlen=0)
            position = log.tell()
    except FileNotFoundError:
        return LogPosition(0, None)
    if lines and not lines[-1].endswith(b"\n"):
        position -= len(lines.pop())  # being written: printed whole once it ends
    out.write(b"".join(lines).decode("utf-8", errors="replace"))
    out.flush()
    return LogPosition(position, identity)


def follow(path: Path, out: TextIO, start: LogPosition, *, poll_s: float = FOLLOW_POLL_S) -> None:
    """Print what is appended to `path` after `start`, forever, whole lines only. The log
    handler rotates by renaming: a new file under the name (or a shorter one) is read from
    its start."""
    position, identity = start
    while True:
        time.sleep(poll_s)
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if _identity_of(stat) != identity or stat.st_size < position:
            position, identity = 0, _identity_of(stat)
        if stat.st_size == position:
            continue
        with path.open("rb") as log:
            log.seek(position)
            added = log.read()
        complete = added[: added.rfind(b"\n") + 1]
        position += len(complete)
        if complete:
            out.write(complete.decode("utf-8", errors="replace"))
            out.flush()


class LogPosition(NamedTuple):
    offset: int
    file: tuple[int, int] | None  # (device, inode): a rotation puts another file here


def _identity_of(stat: os.stat_result) -> tuple[int, int]:
    return stat.st_dev, stat.st_ino
