"""`mcp-bridge daemon`: run the per-user daemon in the foreground (what a service manager
starts; `run` starts one by itself when none answers), or ask a running one for its
`status`, or to `stop`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING, Any

from mcp_bridge.cli.log_setup import LEVELS
from mcp_bridge.errors import BridgeError
from mcp_bridge.paths import BridgePaths, bridge_paths

if TYPE_CHECKING:
    from mcp_bridge.daemon.transport import Listening

# systemd socket activation (sd_listen_fds(3)): the first passed descriptor is fd 3.
SD_LISTEN_FDS_START = 3


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    daemon = commands.add_parser(
        "daemon",
        help="run the per-user daemon that owns logins and remote sessions, or control it",
        description="Without an action, run the daemon in the foreground until it is "
        "stopped (`run` starts one by itself when none answers). `status` and `stop` talk "
        "to the running one.",
    )
    daemon.add_argument("action", nargs="?", choices=("run", "status", "stop"), default="run")
    daemon.add_argument(
        "--idle-exit",
        type=float,
        metavar="SECONDS",
        help="exit after this long without a client (default: never)",
    )
    daemon.add_argument("--log-level", choices=LEVELS, default="warning")
    daemon.set_defaults(handler=daemon_command)


def daemon_command(args: argparse.Namespace) -> int:
    paths = bridge_paths()
    if args.action == "run":
        return _run(paths, idle_exit_s=args.idle_exit, log_level=args.log_level)
    from mcp_bridge.shim.connection import ask_daemon

    reply = ask_daemon(paths, args.action)
    reply.pop("mcp-bridge", None)
    reply.pop("ok", None)
    if args.action == "stop":
        print("mcp-bridge: the daemon is stopping", file=sys.stderr)
    else:
        print(json.dumps(reply, indent=2))
    return 0


def _run(paths: BridgePaths, *, idle_exit_s: float | None, log_level: str) -> int:
    import asyncio

    from mcp_bridge.cli.log_setup import configure_logging

    configure_logging(
        stderr_level=log_level, log_file=paths.log_file("daemon"), per_server_dir=paths.log_dir
    )
    try:
        listening = _listening(paths)
    except OSError as exc:
        raise BridgeError(
            f"The daemon cannot listen: {exc}",
            next_step="`mcp-bridge daemon status` shows the one already running",
        ) from exc
    asyncio.run(_serve(paths, listening, idle_exit_s))
    return 0


def _listening(paths: BridgePaths) -> Listening:
    """The socket systemd passed us (socket activation), or the user's transport."""
    from mcp_bridge.daemon import transport

    if os.environ.get("LISTEN_PID") == str(os.getpid()) and os.environ.get("LISTEN_FDS"):
        import socket

        return transport.adopt(socket.socket(fileno=SD_LISTEN_FDS_START))
    return transport.listen(paths)


async def _serve(paths: BridgePaths, listening: Listening, idle_exit_s: float | None) -> None:
    import asyncio
    import contextlib
    import signal

    from mcp_bridge.daemon.server import DaemonServer
    from mcp_bridge.engine.registry import CredentialRegistry

    registry = CredentialRegistry(paths, interactive=True)
    server = DaemonServer(registry, idle_exit_s=idle_exit_s)
    async with contextlib.aclosing(server) as daemon:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError):
                loop.add_signal_handler(signum, daemon.stop)
        await daemon.serve(listening)
