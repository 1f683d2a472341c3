"""`mcp-bridge service install|uninstall`: the daemon under this user's service manager
(systemd --user with socket activation, a launchd agent), there from login on and restarted
when it fails, instead of started by the first `run` and idling out. The files are templates
shipped in the package (service_templates/), filled in with the absolute path of the running
mcp-bridge: a service manager does not search the shell's PATH, and the daemon must be the
same install as the shims that talk to it."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# Not a startup cost: cli.app and the other subcommands have imported both already.
from mcp_bridge.cli.service_files import (
    LAUNCHD_LABEL,
    SERVICE_UNIT,
    SOCKET_UNIT,
    daemon_command,
    render_plist,
    render_service_unit,
    template_text,
)
from mcp_bridge.errors import BridgeError, ConfigError
from mcp_bridge.paths import HOME_ENV, BridgePaths, bridge_paths

TOOL_TIMEOUT_S = 30.0
HANDOVER_TIMEOUT_S = 15.0  # how long a stopping or starting daemon may take
POLL_S = 0.05


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    service = commands.add_parser(
        "service",
        help="install or remove the daemon as a per-user service (systemd, launchd)",
        description="Install the daemon under this user's service manager, so that it "
        "runs from login on and restarts when it fails: systemd --user units with socket "
        "activation on Linux, a launchd agent on macOS. Not available on Windows yet.",
    )
    service.add_argument("action", choices=("install", "uninstall"))
    service.add_argument(
        "--dry-run", action="store_true", help="show what would be written and run; change nothing"
    )
    service.set_defaults(handler=service_command)


def service_command(args: argparse.Namespace) -> int:
    manager = _service_manager()
    if args.action == "install":
        _install(manager, dry_run=args.dry_run)
    else:
        _uninstall(manager, dry_run=args.dry_run)
    return 0


# -- what each service manager needs -----------------------------------------------------


class _Systemd:
    """systemd --user: a socket unit that starts the service at the first connection."""

    tool = "systemctl"
    binds_itself = False  # systemd listens from `enable --now` on
    status_hint = "`systemctl --user status mcp-bridge.socket mcp-bridge.service` says more"

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
        _, state, _ = _run_tool(["systemctl", "--user", "is-active", SOCKET_UNIT])
        # is-active prints the unit's state; nothing at all when no user manager answers.
        return state == "active" if state else None

    def load_steps(self, *, loaded: bool) -> list[list[str]]:
        steps = [["systemctl", "--user", "daemon-reload"]]
        if loaded:  # the running daemon keeps its old ExecStart until restarted
            steps.append(["systemctl", "--user", "try-restart", SERVICE_UNIT])
        return [*steps, ["systemctl", "--user", "enable", "--now", SOCKET_UNIT]]

    def unload_steps(self) -> list[list[str]]:
        return [["systemctl", "--user", "disable", "--now", SOCKET_UNIT, SERVICE_UNIT]]

    def after_removal_steps(self) -> list[list[str]]:
        return [["systemctl", "--user", "daemon-reload"]]

    def prepare(self) -> None:
        pass


class _Launchd:
    """launchd: an agent loaded at login, kept alive, that binds its socket itself."""

    tool = "launchctl"
    binds_itself = True  # the daemon listens a moment after `bootstrap` returns

    def __init__(self) -> None:
        self.plist = Path.home() / "Library" / "LaunchAgents" / f"{LAUNCHD_LABEL}.plist"
        self.domain = f"gui/{os.getuid()}"
        self.status_hint = f"`launchctl print {self.domain}/{LAUNCHD_LABEL}` says more"

    def files(self, command: list[str]) -> dict[Path, str]:
        return {self.plist: render_plist(command, bridge_paths().log_dir)}

    def removable(self) -> list[Path]:
        return [self.plist]

    def loaded(self) -> bool | None:
        if _run_tool(["launchctl", "print", self.domain])[0] != 0:
            return None  # no GUI session for this user (over SSH), or no launchctl
        return _run_tool(["launchctl", "print", f"{self.domain}/{LAUNCHD_LABEL}"])[0] == 0

    def load_steps(self, *, loaded: bool) -> list[list[str]]:
        # A loaded agent keeps its old arguments until it is booted out and in again.
        out = [["launchctl", "bootout", f"{self.domain}/{LAUNCHD_LABEL}"]] if loaded else []
        return [*out, ["launchctl", "bootstrap", self.domain, str(self.plist)]]

    def unload_steps(self) -> list[list[str]]:
        return [["launchctl", "bootout", f"{self.domain}/{LAUNCHD_LABEL}"]]

    def after_removal_steps(self) -> list[list[str]]:
        return []

    def prepare(self) -> None:
        # launchd opens StandardOutPath itself and does not create its directory.
        bridge_paths().log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)


_Manager = _Systemd | _Launchd


def _service_manager() -> _Manager:
    if sys.platform.startswith("linux"):
        return _Systemd()
    if sys.platform == "darwin":
        return _Launchd()
    if sys.platform in ("win32", "cygwin"):
        raise BridgeError(
            "mcp-bridge service has no Windows scheduled task yet (not available on Windows "
            "yet); nothing was written",
            next_step="`mcp-bridge run` starts the daemon by itself when a client needs it",
        )
    raise BridgeError(
        f"mcp-bridge service knows systemd (Linux) and launchd (macOS), not {sys.platform}",
        next_step="Start `mcp-bridge daemon` from your session's autostart instead",
    )


# -- install and uninstall ---------------------------------------------------------------


def _install(manager: _Manager, *, dry_run: bool) -> None:
    _refuse_custom_home()
    files = manager.files(daemon_command())
    changed = [path for path, text in files.items() if _read(path) != text]
    loaded = manager.loaded()
    if not dry_run:
        manager.prepare()
    _write_files(files, changed, dry_run=dry_run)
    if not changed:
        print("The service files are up to date: nothing changed.")
        if loaded:
            return
    steps = manager.load_steps(loaded=bool(loaded))
    if loaded is None:
        print(
            f"{manager.tool} cannot reach your service manager here (no user session: a "
            "container, CI, SSH without a login session?). From your desktop session, run:"
        )
        for argv in steps:
            print(f"  {_shell_line(argv)}")
    elif dry_run:
        _apply(manager, steps, strict=True, dry_run=True)
    else:
        _activate(manager, steps, stop_running=not loaded)


def _uninstall(manager: _Manager, *, dry_run: bool) -> None:
    present = [path for path in manager.removable() if os.path.lexists(path)]
    if not present:
        print("The service is not installed: nothing to remove.")
        return
    reachable = manager.loaded() is not None
    if reachable:
        _apply(manager, manager.unload_steps(), strict=False, dry_run=dry_run)
    else:
        print(f"note: {manager.tool} cannot reach your service manager here: nothing to stop")
    for path in present:
        print(f"{'would remove' if dry_run else 'removed'} {path}")
        if not dry_run:
            path.unlink(missing_ok=True)  # `disable` may have removed its link already
    if reachable:
        _apply(manager, manager.after_removal_steps(), strict=False, dry_run=dry_run)


def _refuse_custom_home() -> None:
    if os.environ.get(HOME_ENV):
        raise ConfigError(
            f"{HOME_ENV} is set, and the service would serve the default locations instead "
            "(its shims would not find it)",
            next_step=f"Install with {HOME_ENV} unset, or run `mcp-bridge daemon` yourself",
        )


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BridgeError(f"Cannot read {path}: {exc}", next_step="Remove or fix it") from exc


def _write_files(files: dict[Path, str], changed: list[Path], *, dry_run: bool) -> None:
    for path, text in files.items():
        if dry_run:
            print(f"--- {path} ({'would write' if path in changed else 'unchanged'})")
            print(text, end="" if text.endswith("\n") else "\n")
        elif path in changed:
            _write(path, text)
            print(f"wrote {path}")
        else:
            print(f"unchanged {path}")


def _write(path: Path, text: str) -> None:
    """Through a temporary file and a rename: a service manager reading the directory
    meanwhile never loads half a unit. 0644, as unit files usually are."""
    from mcp_bridge.atomic_file import write_atomically

    try:
        write_atomically(path, text.encode("utf-8"))
        path.chmod(0o644)
    except OSError as exc:
        raise BridgeError(f"Cannot write {path}: {exc}", next_step="Check its directory") from exc


# -- running the service manager ---------------------------------------------------------


def _run_tool(argv: list[str]) -> tuple[int, str, str]:
    """Run a service-manager command (argv[0] looked up on PATH, never through a shell):
    its exit code, stdout and stderr; 127 when the tool is not there."""
    import shutil
    import subprocess

    tool = shutil.which(argv[0])
    if tool is None:
        return 127, "", f"{argv[0]} was not found"
    try:
        done = subprocess.run(
            [tool, *argv[1:]],
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return 1, "", str(exc)
    return done.returncode, done.stdout.strip(), done.stderr.strip()


def _apply(manager: _Manager, steps: list[list[str]], *, strict: bool, dry_run: bool) -> None:
    """Run `steps` in order, saying what ran. A failure is an error when `strict`; else it
    is reported and the rest still runs (uninstall removes what it can)."""
    for argv in steps:
        if dry_run:
            print(f"would run: {_shell_line(argv)}")
            continue
        code, out, err = _run_tool(argv)
        if code == 0:
            print(f"ran: {_shell_line(argv)}")
            continue
        what = f"`{_shell_line(argv)}` failed: {err or out or f'exit code {code}'}"
        if strict:
            raise BridgeError(what, next_step=manager.status_hint)
        print(f"note: {what}")


def _shell_line(argv: list[str]) -> str:
    import shlex

    return shlex.join(argv)


# -- handing the socket over from a daemon that `run` started ------------------------------


def _activate(manager: _Manager, steps: list[list[str]], *, stop_running: bool) -> None:
    """Run `steps` holding the lock that shims take before they start a daemon, so that a
    shim finding no daemon meanwhile waits for the service instead of starting its own.
    With `stop_running`, a daemon that `run` started is stopped first: otherwise it would
    keep its clients for good, and remove the service's socket file when it exits."""
    # The lock the shims take before they start a daemon.
    from mcp_bridge.shim.connection import start_lock

    paths = bridge_paths()
    with start_lock(paths):
        if stop_running:
            _stop_started_daemon(paths)
        _apply(manager, steps, strict=True, dry_run=False)
        if manager.binds_itself:
            _wait_until_listening(paths)


def _stop_started_daemon(paths: BridgePaths) -> None:
    import time

    from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon

    try:
        ask_daemon(paths, "stop")
    except (DaemonUnavailable, OSError):
        return  # nobody answers: nothing to hand over
    print("stopped the daemon that `mcp-bridge run` had started; its clients reconnect")
    # It removes its socket file as it exits: the service's must come after that.
    socket_path = paths.daemon_socket()
    deadline = time.monotonic() + HANDOVER_TIMEOUT_S
    while os.path.lexists(socket_path) and time.monotonic() < deadline:
        time.sleep(POLL_S)


def _wait_until_listening(paths: BridgePaths) -> None:
    """launchd starts the daemon after `bootstrap` returns; a shim let go before it
    listens would start a daemon of its own."""
    import time

    from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon

    deadline = time.monotonic() + HANDOVER_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            ask_daemon(paths, "status")
            return
        except DaemonUnavailable:
            time.sleep(POLL_S)
    print(
        f"note: the daemon did not answer within {HANDOVER_TIMEOUT_S:.0f} s; see "
        f"{paths.log_file('daemon-start')} and {paths.log_file('daemon')}"
    )
