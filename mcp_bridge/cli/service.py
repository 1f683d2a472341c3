"""`mcp-bridge service install|uninstall`: the daemon under this user's service manager
(systemd --user with socket activation, a launchd agent, a Task Scheduler task), there from
login on and restarted when it fails, instead of started by the first `run` and idling out.
The files are templates shipped in the package (service_templates/), filled in with the
absolute path of the running mcp-bridge: a service manager does not search the shell's
PATH, and the daemon must be the same install as the shims that talk to it. What each
manager needs is plain data in service_managers.py; this module does the I/O."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

# Not a startup cost: stdlib, paths and errors, which cli.app has imported already.
from mcp_bridge.cli import service_managers
from mcp_bridge.cli.service_files import daemon_command
from mcp_bridge.cli.service_managers import Manager, Step, ToolNotFound, service_manager
from mcp_bridge.errors import BridgeError, ConfigError
from mcp_bridge.paths import HOME_ENV, BridgePaths, bridge_paths

if TYPE_CHECKING:
    from mcp_bridge.daemon.transport import DaemonAddress

HANDOVER_TIMEOUT_S = 15.0  # how long a stopping or starting daemon may take
POLL_S = 0.05


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    service = commands.add_parser(
        "service",
        help="install or remove the daemon as a per-user service (systemd, launchd, "
        "Task Scheduler)",
        description="Install the daemon under this user's service manager, so that it "
        "runs from login on and restarts when it fails: systemd --user units with socket "
        "activation on Linux, a launchd agent on macOS, a Task Scheduler task at logon on "
        "Windows.",
    )
    service.add_argument("action", choices=("install", "uninstall"))
    service.add_argument(
        "--dry-run", action="store_true", help="show what would be written and run; change nothing"
    )
    service.set_defaults(handler=service_command)


def service_command(args: argparse.Namespace) -> int:
    manager = service_manager()
    if args.action == "install":
        _install(manager, dry_run=args.dry_run)
    else:
        _uninstall(manager, dry_run=args.dry_run)
    return 0


# -- install and uninstall ---------------------------------------------------------------


def _install(manager: Manager, *, dry_run: bool) -> None:
    _refuse_custom_home()
    _refuse_other_transport(manager)
    files = {path: manager.encode(text) for path, text in manager.files(daemon_command()).items()}
    changed = [path for path, data in files.items() if _read(path) != data]
    try:
        loaded = manager.loaded()
    except ToolNotFound as exc:
        if not dry_run:
            raise
        print(f"note: {exc.what}")  # what a dry run shows is for running by hand
        loaded = False
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
        for step in steps:
            print(f"  {_shell_line(step.argv)}")
    elif dry_run:
        _apply(manager, steps, dry_run=True)
    else:
        stop_running = manager.stops_loaded_daemon or not loaded
        _activate(manager, steps, stop_running=stop_running)


def _uninstall(manager: Manager, *, dry_run: bool) -> None:
    present = [path for path in manager.removable() if os.path.lexists(path)]
    if not present:
        print("The service is not installed: nothing to remove.")
        return
    loaded = manager.loaded()
    if loaded is not None:
        _apply(manager, manager.unload_steps(loaded=loaded), dry_run=dry_run)
    else:
        print(f"note: {manager.tool} cannot reach your service manager here: nothing to stop")
    for path in present:
        print(f"{'would remove' if dry_run else 'removed'} {path}")
        if not dry_run:
            path.unlink(missing_ok=True)  # `disable` may have removed its link already
    if loaded is not None:
        _apply(manager, manager.after_removal_steps(), dry_run=dry_run)


def _refuse_custom_home() -> None:
    if os.environ.get(HOME_ENV):
        raise ConfigError(
            f"{HOME_ENV} is set, and the service would serve the default locations instead "
            "(its shims would not find it)",
            next_step=f"Install with {HOME_ENV} unset, or run `mcp-bridge daemon` yourself",
        )


def _refuse_other_transport(manager: Manager) -> None:
    """A systemd or launchd service listens on the Unix socket; shims that look for the
    daemon on loopback TCP (MCP_BRIDGE_DAEMON_TRANSPORT=tcp) would never find it, and
    start daemons of their own beside it."""
    from mcp_bridge.daemon.transport import TRANSPORT_ENV, uses_loopback

    if manager.on_unix_socket and uses_loopback():
        raise ConfigError(
            f"{TRANSPORT_ENV}=tcp is set, and the service's daemon would listen on the Unix "
            "socket (shims with it set look for a daemon on loopback TCP instead)",
            next_step=f"Install with {TRANSPORT_ENV} unset, or run `mcp-bridge daemon` yourself",
        )


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise BridgeError(f"Cannot read {path}: {exc}", next_step="Remove or fix it") from exc


def _write_files(files: dict[Path, bytes], changed: list[Path], *, dry_run: bool) -> None:
    for path, data in files.items():
        if dry_run:
            print(f"--- {path} ({'would write' if path in changed else 'unchanged'})")
            text = _shown(data)
            print(text, end="" if text.endswith("\n") else "\n")
        elif path in changed:
            _write(path, data)
            print(f"wrote {path}")
        else:
            print(f"unchanged {path}")


def _shown(data: bytes) -> str:
    """A file's text for --dry-run: the Task Scheduler's task is UTF-16 with a BOM."""
    import codecs

    return data.decode("utf-16" if data.startswith(codecs.BOM_UTF16_LE) else "utf-8")


def _write(path: Path, data: bytes) -> None:
    """Through a temporary file and a rename: a service manager reading the directory
    meanwhile never loads half a unit. 0644, as unit files usually are."""
    from mcp_bridge.atomic_file import write_atomically

    try:
        write_atomically(path, data)
        path.chmod(0o644)
    except OSError as exc:
        raise BridgeError(f"Cannot write {path}: {exc}", next_step="Check its directory") from exc


# -- running the service manager ---------------------------------------------------------


def _apply(manager: Manager, steps: list[Step], *, dry_run: bool) -> None:
    """Run `steps` in order, saying what ran. A required step that fails ends the
    command with an error naming what is left to run by hand; any other is reported
    and the rest still runs."""
    for index, step in enumerate(steps):
        if dry_run:
            print(f"would run: {_shell_line(step.argv)}")
            continue
        code, out, err = service_managers.run_tool(step.argv)
        if code == 0:
            print(f"ran: {_shell_line(step.argv)}")
            continue
        detail = (err or out).rstrip(".") or f"exit code {code}"
        what = f"`{_shell_line(step.argv)}` failed: {detail}"
        if step.required:
            left = "; ".join(_shell_line(later.argv) for later in steps[index:])
            raise BridgeError(
                what,
                next_step=f"{manager.status_hint}. Once that is fixed, run the same "
                f"`mcp-bridge service` command again, or by hand: {left}",
            )
        print(f"note: {what}")


def _shell_line(argv: list[str]) -> str:
    """`argv` as one would type it: cmd.exe's quoting on Windows, a POSIX shell's else."""
    if sys.platform == "win32":
        import subprocess

        return subprocess.list2cmdline(argv)
    import shlex

    return shlex.join(argv)


# -- handing the socket over from a daemon that `run` started ------------------------------


def _activate(manager: Manager, steps: list[Step], *, stop_running: bool) -> None:
    """Run `steps` holding the lock that shims take before they start a daemon, so that a
    shim finding no daemon meanwhile waits for the service instead of starting its own.
    With `stop_running`, a daemon that `run` started is stopped first: otherwise it would
    keep its clients for good, and remove the service's socket file when it exits."""
    # The lock the shims take before they start a daemon.
    from mcp_bridge.shim.connection import start_lock

    paths = bridge_paths()
    with start_lock(paths):
        if stop_running:
            _stop_running_daemon(paths)
        _apply(manager, steps, dry_run=False)
        if manager.binds_itself:
            _wait_until_listening(paths)


def _stop_running_daemon(paths: BridgePaths) -> None:
    import time

    from mcp_bridge.daemon import transport
    from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon

    try:
        address = transport.find_daemon(paths)
        ask_daemon(paths, "stop")
    except (DaemonUnavailable, OSError):
        return  # nobody answers: nothing to hand over
    print("stopped the daemon that was running; its clients reconnect to the service's")
    # The service's daemon must come after it is gone: on a Unix socket, after it removed
    # its socket file; on loopback, after its process ended (a new one refuses to
    # listen while it lives, and Task Scheduler ignores a start while the task runs).
    deadline = time.monotonic() + HANDOVER_TIMEOUT_S
    while _still_there(address) and time.monotonic() < deadline:
        time.sleep(POLL_S)


def _still_there(address: DaemonAddress | None) -> bool:
    from mcp_bridge.daemon import endpoint_file, transport

    if isinstance(address, endpoint_file.LoopbackAddress):
        return endpoint_file.process_is_running(address.pid)
    if isinstance(address, transport.UnixSocketAddress):
        return os.path.lexists(address.path)
    return False


def _wait_until_listening(paths: BridgePaths) -> None:
    """launchd and Task Scheduler start the daemon after `bootstrap` or `/Run` returns;
    a shim let go before it listens would start a daemon of its own."""
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
