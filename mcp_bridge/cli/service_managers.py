"""What each service manager needs for `mcp-bridge service`: the files to write, how to
tell whether the service is loaded, and the commands that load and unload it, as plain
lists (`Step`s). service.py writes the files and runs the steps; nothing here changes
anything but the `loaded()` queries, which only read.

    Linux     systemd --user units, socket activation                 systemctl
    macOS     a launchd agent in ~/Library/LaunchAgents                launchctl
    Windows   a Task Scheduler task at this user's logon               schtasks
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import NamedTuple

from mcp_bridge.cli.service_files import (
    LAUNCHD_LABEL,
    SERVICE_UNIT,
    SOCKET_UNIT,
    TASK_NAME,
    encode_task_xml,
    render_plist,
    render_service_unit,
    render_task_xml,
    template_text,
    windowless_command,
    windows_user,
)
from mcp_bridge.errors import BridgeError
from mcp_bridge.paths import bridge_paths

__all__ = ["Manager", "Step", "ToolNotFound", "run_tool", "service_manager"]

TOOL_TIMEOUT_S = 30.0


class Step(NamedTuple):
    """One service-manager command. A `required` step that fails stops the command with
    an error; any other is reported and the rest still runs (uninstall removes what it
    can)."""

    argv: list[str]
    required: bool = True


class ToolNotFound(BridgeError):
    """The service manager's command-line tool is not on PATH where it must be."""


def _utf8(text: str) -> bytes:
    return text.encode("utf-8")


class _Systemd:
    """systemd --user: a socket unit that starts the service at the first connection."""

    tool = "systemctl"
    on_unix_socket = True  # the socket unit's path; the daemon serves the socket passed it
    binds_itself = False  # systemd listens from `enable --now` on
    stops_loaded_daemon = False  # `try-restart` restarts it
    status_hint = "`systemctl --user status mcp-bridge.socket mcp-bridge.service` says more"
    encode = staticmethod(_utf8)

    def __init__(self) -> None:
        config = os.environ.get("XDG_CONFIG_HOME", "")
        # The XDG spec says to ignore a relative XDG_CONFIG_HOME; systemd does too.
        base = Path(config) if os.path.isabs(config) else Path.home() / ".config"
        self.unit_dir = base / "systemd" / "user"

    def files(self, command: list[str]) -> dict[Path, str]:
        return {
            self.unit_dir / SOCKET_UNIT: template_text("systemd", SOCKET_UNIT),
            self.unit_dir / SERVICE_UNIT: render_service_unit(command),
        }

    def removable(self) -> list[Path]:
        # `enable` links the socket into sockets.target.wants/; when `disable` cannot run
        # (no user manager here) that link would be left dangling.
        wants = self.unit_dir / "sockets.target.wants" / SOCKET_UNIT
        return [self.unit_dir / SOCKET_UNIT, self.unit_dir / SERVICE_UNIT, wants]

    def loaded(self) -> bool | None:
        _, state, _ = run_tool(["systemctl", "--user", "is-active", SOCKET_UNIT])
        # is-active prints the unit's state; nothing at all when no user manager answers.
        return state == "active" if state else None

    def load_steps(self, *, loaded: bool) -> list[Step]:
        steps = [Step(["systemctl", "--user", "daemon-reload"])]
        if loaded:  # the running daemon keeps its old ExecStart until restarted
            steps.append(Step(["systemctl", "--user", "try-restart", SERVICE_UNIT]))
        return [*steps, Step(["systemctl", "--user", "enable", "--now", SOCKET_UNIT])]

    def unload_steps(self, *, loaded: bool) -> list[Step]:
        argv = ["systemctl", "--user", "disable", "--now", SOCKET_UNIT, SERVICE_UNIT]
        return [Step(argv, required=False)]

    def after_removal_steps(self) -> list[Step]:
        return [Step(["systemctl", "--user", "daemon-reload"], required=False)]

    def prepare(self) -> None:
        pass


class _Launchd:
    """launchd: an agent loaded at login, kept alive, that binds its socket itself."""

    tool = "launchctl"
    # The agent's daemon chooses as `auto` does: launchd passes it none of the shell's
    # environment, so no MCP_BRIDGE_DAEMON_TRANSPORT.
    on_unix_socket = True
    binds_itself = True  # the daemon listens a moment after `bootstrap` returns
    stops_loaded_daemon = False  # `bootout` stops it
    encode = staticmethod(_utf8)

    def __init__(self) -> None:
        self.plist = Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
        self.domain = f"gui/{os.getuid()}"
        self.status_hint = f"`launchctl print {self.domain}/{LAUNCHD_LABEL}` says more"

    def files(self, command: list[str]) -> dict[Path, str]:
        return {self.plist: render_plist(command, bridge_paths().log_dir)}

    def removable(self) -> list[Path]:
        return [self.plist]

    def loaded(self) -> bool | None:
        if run_tool(["launchctl", "print", self.domain])[0] != 0:
            return None  # no GUI session for this user (over SSH), or no launchctl
        return run_tool(["launchctl", "print", f"{self.domain}/{LAUNCHD_LABEL}"])[0] == 0

    def load_steps(self, *, loaded: bool) -> list[Step]:
        # A loaded agent keeps its old arguments until it is booted out and in again.
        bootout = ["launchctl", "bootout", f"{self.domain}/{LAUNCHD_LABEL}"]
        out = [Step(bootout)] if loaded else []
        return [*out, Step(["launchctl", "bootstrap", self.domain, str(self.plist)])]

    def unload_steps(self, *, loaded: bool) -> list[Step]:
        return [Step(["launchctl", "bootout", f"{self.domain}/{LAUNCHD_LABEL}"], required=False)]

    def after_removal_steps(self) -> list[Step]:
        return []

    def prepare(self) -> None:
        # launchd opens StandardOutPath itself and does not create its directory.
        bridge_paths().log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


class _TaskScheduler:
    """Windows Task Scheduler: a task that runs `pythonw.exe -m mcp_bridge daemon` (no
    console window; `mcp-bridge.exe daemon` where there is no pythonw) at this user's
    logon. The daemon binds its loopback port itself. schtasks takes the task as an XML
    file, which stays in mcp-bridge's config directory (it holds no secret) so that a
    second install can tell whether anything changed."""

    tool = "schtasks"
    on_unix_socket = False  # loopback TCP, Windows' one transport
    binds_itself = True
    # Task Scheduler ignores a start while the task still runs (IgnoreNew): the running
    # daemon is asked to stop, and gone, before the new task is started.
    stops_loaded_daemon = True
    status_hint = f"`schtasks /Query /TN {TASK_NAME} /V /FO LIST` says more"
    encode = staticmethod(encode_task_xml)

    def __init__(self) -> None:
        self.task_file = bridge_paths().config_dir / f"{TASK_NAME}.xml"

    def files(self, command: list[str]) -> dict[Path, str]:
        return {self.task_file: render_task_xml(windowless_command(command), windows_user())}

    def removable(self) -> list[Path]:
        return [self.task_file]

    def loaded(self) -> bool:
        """Whether the task is registered. Raises ToolNotFound when schtasks is missing:
        unlike a Linux container without a user manager, a Windows session always has
        Task Scheduler, so a missing tool is a broken PATH to fix, not a case to skip."""
        code, _, err = run_tool(["schtasks", "/Query", "/TN", TASK_NAME])
        if code == NOT_FOUND:
            raise ToolNotFound(
                f"{err} on PATH (Task Scheduler's command-line tool, in "
                "%SystemRoot%\\System32); nothing was changed",
                next_step="Put %SystemRoot%\\System32 back on PATH and run this again; "
                "`mcp-bridge service install --dry-run` shows the task and the schtasks "
                "commands to run by hand",
            )
        return code == 0

    def load_steps(self, *, loaded: bool) -> list[Step]:
        # /F replaces a registered task; /Run starts the daemon now, not at the next logon.
        return [
            Step(["schtasks", "/Create", "/TN", TASK_NAME, "/XML", str(self.task_file), "/F"]),
            Step(["schtasks", "/Run", "/TN", TASK_NAME]),
        ]

    def unload_steps(self, *, loaded: bool) -> list[Step]:
        if not loaded:
            return []  # nothing registered: /Delete would fail
        # /End fails when the task is not running, which is fine; a task left registered
        # after /Delete failed would start a removed install at the next logon.
        return [
            Step(["schtasks", "/End", "/TN", TASK_NAME], required=False),
            Step(["schtasks", "/Delete", "/TN", TASK_NAME, "/F"]),
        ]

    def after_removal_steps(self) -> list[Step]:
        return []

    def prepare(self) -> None:
        pass


Manager = _Systemd | _Launchd | _TaskScheduler


def service_manager() -> Manager:
    if sys.platform.startswith("linux"):
        return _Systemd()
    if sys.platform == "darwin":
        return _Launchd()
    if sys.platform == "win32":
        return _TaskScheduler()
    raise BridgeError(
        f"mcp-bridge service knows systemd (Linux), launchd (macOS) and Task Scheduler "
        f"(Windows), not {sys.platform}",
        next_step="Start `mcp-bridge daemon` from your session's autostart instead",
    )


NOT_FOUND = 127


def run_tool(argv: list[str]) -> tuple[int, str, str]:
    """Run a service-manager command (argv[0] looked up on PATH, never through a shell):
    its exit code, stdout and stderr; NOT_FOUND when the tool is not there."""
    import shutil
    import subprocess

    tool = shutil.which(argv[0])
    if tool is None:
        return NOT_FOUND, "", f"{argv[0]} was not found"
    try:
        done = subprocess.run(
            [tool, *argv[1:]],
            capture_output=True,
            text=True,
            errors="replace",  # schtasks answers in the console's code page
            timeout=TOOL_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return 1, "", str(exc)
    return done.returncode, done.stdout.strip(), done.stderr.strip()
