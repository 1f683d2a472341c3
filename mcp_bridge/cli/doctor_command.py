"""`mcp-bridge doctor URL|NAME [--json]`: every step between this machine and a working
sign-in to one server, each with pass/fail/skip, what was found and what to do next.

The steps are the engine's (engine/checkup); this module resolves the target as `run`
does (a name of servers.toml, the same flags), asks the daemon for its status, and prints.
Read-only: no login, no registration, no vault write, no daemon started, no secret shown.
Exit code 1 when a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mcp_bridge.cli.server_flags import add_server_arguments, defer_defaults, resolve_server

if TYPE_CHECKING:
    from mcp_bridge.engine.checkup import CheckupTarget, Finding
    from mcp_bridge.paths import BridgePaths

_MARKS = {"pass": "pass", "fail": "FAIL", "skip": "skip"}


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    doctor = commands.add_parser(
        "doctor",
        help="check each step to a working sign-in to a server, and say what to fix",
        description="Check the profile, proxy, DNS, TLS, MCP transport, the server's OAuth "
        "metadata, client registration, PKCE, the redirect, the keyring (here and as a "
        "desktop client starts mcp-bridge), the stored login and the daemon. Changes "
        "nothing and never signs in. Exit code 1 when a step fails.",
    )
    doctor.add_argument(
        "url",
        metavar="URL|NAME",
        help="the remote MCP endpoint, or the name of a server added with `mcp-bridge add` "
        "(flags given here win over its stored ones, as for `run`)",
    )
    add_server_arguments(doctor)
    doctor.add_argument("--json", action="store_true", help="print the findings as JSON")
    defer_defaults(doctor)
    doctor.set_defaults(handler=doctor_command)


def doctor_command(args: argparse.Namespace) -> int:
    import asyncio

    from mcp_bridge.cli.log_setup import configure_logging
    from mcp_bridge.paths import bridge_paths

    # Findings say what went wrong; log lines on top of them would only repeat it.
    configure_logging(stderr_level="error")
    paths = bridge_paths()
    target = checkup_target(args, os.environ, paths)
    return asyncio.run(_doctor(target, paths, as_json=args.json))


def checkup_target(
    args: argparse.Namespace, environ: Mapping[str, str], paths: BridgePaths
) -> CheckupTarget:
    """The profile `run` would build from these arguments, or the error it would stop at."""
    from mcp_bridge.cli.run import profile_json
    from mcp_bridge.engine.checkup import CheckupTarget
    from mcp_bridge.engine.profile import DEFAULT_MAX_MESSAGE_BYTES, ServerProfile
    from mcp_bridge.errors import BridgeError
    from mcp_bridge.server_config import is_name

    args.max_message_bytes = DEFAULT_MAX_MESSAGE_BYTES  # profile_json reads `run`'s flag
    given = args.url
    try:
        resolve_server(args, environ)
        profile = ServerProfile.from_json(profile_json(args, environ))
    except BridgeError as exc:
        named = given if is_name(given) else None
        return CheckupTarget(
            None, exc, server_name=named, servers_file=paths.servers_file if named else None
        )
    return CheckupTarget(
        profile,
        server_name=args.server_name,
        servers_file=paths.servers_file if args.server_name else None,
    )


async def _doctor(target: CheckupTarget, paths: BridgePaths, *, as_json: bool) -> int:
    from mcp_bridge.engine.checkup import exit_code, run_checkup

    findings: list[Finding] = []
    if not as_json:
        shown = target.profile.url if target.profile is not None else "the server"
        _write(f"mcp-bridge doctor: {shown}")
    checkup = run_checkup(
        target, environ=os.environ, paths=paths, daemon_status=lambda: _daemon_status(paths)
    )
    async for finding in checkup:
        findings.append(finding)
        if not as_json:
            _write(_as_text(finding))
    code = exit_code(findings)
    if as_json:
        report = {
            "server": target.profile.url if target.profile is not None else None,
            "ok": code == 0,
            "steps": [finding.to_json() for finding in findings],
        }
        _write(json.dumps(report, indent=2))
    else:
        failed = sum(1 for finding in findings if finding.outcome.value == "fail")
        _write(f"{failed} step(s) failed" if failed else "every step passed or does not apply")
    return code


def _daemon_status(paths: BridgePaths) -> dict[str, object] | None:
    """The daemon's `status` reply, or None when none runs (never starts one)."""
    from mcp_bridge.shim.connection import DaemonNotRunning, ask_daemon

    try:
        return ask_daemon(paths, "status")
    except DaemonNotRunning:
        return None


def _as_text(finding: Finding) -> str:
    mark = _MARKS[finding.outcome.value]
    lines = [f"  {mark}  {finding.step:<21} {finding.detail}"]
    if finding.next_step:
        lines.append(f"        {'':<21} next: {finding.next_step}")
    return "\n".join(lines)


def _write(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
