"""`mcp-bridge service` on Windows over time: the handover from a running daemon to the
task's, a reinstall, and uninstall, against the fake schtasks of fixtures/windows_user.py
(no Task Scheduler runs here; see tests/test_service_windows.py). Here the fake also starts
the task's Command and Arguments, real daemons on loopback TCP, as on Windows."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess

import pytest

from mcp_bridge.cli import service
from mcp_bridge.paths import bridge_paths
from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon
from tests.fixtures.daemon_process import is_running, wait_for_exit
from tests.fixtures.service_cli import service_cli
from tests.fixtures.windows_user import QUERY, REAL_PYTHON, Windows


def test_install_hands_the_daemon_over_to_the_task_and_uninstall_ends_it(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real daemons on loopback TCP: one that `run` started, then the ones the task
    starts (the first windowless, by pythonw.exe: no standard streams at all). The fake's
    /Run ignores a start while the task's daemon lives, as Task Scheduler does, so a
    reinstall that did not stop it first would keep the old one."""
    monkeypatch.setattr(service, "HANDOVER_TIMEOUT_S", 15.0)
    windows.script.write_text(f'#!/bin/sh\nexec "{REAL_PYTHON}" -m mcp_bridge "$@"\n')
    (windows.state / "spawns").touch()
    paths = bridge_paths()
    pids = [_start_a_daemon_as_run_does()]
    try:
        code, out, err = service_cli(capsys, "install")

        assert code == 0, err
        assert "stopped the daemon that was running" in out
        assert "did not answer" not in out
        assert not is_running(pids[0])
        pids.append(int((windows.state / "running").read_text()))
        assert ask_daemon(paths, "status")["pid"] == pids[1]

        windows.pythonw.unlink()  # the task now runs mcp-bridge.exe daemon
        code, out, err = service_cli(capsys, "install")

        assert code == 0, err
        assert "stopped the daemon that was running" in out
        pids.append(int((windows.state / "running").read_text()))
        assert pids[2] != pids[1]
        assert not is_running(pids[1])
        assert ask_daemon(paths, "status")["pid"] == pids[2]

        code, out, err = service_cli(capsys, "uninstall")

        assert code == 0, err
        assert "ran: schtasks /End /TN mcp-bridge-daemon" in out
        wait_for_exit(pids[2])
        with pytest.raises(DaemonUnavailable):
            ask_daemon(paths, "status")
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _start_a_daemon_as_run_does() -> int:
    """A daemon started by a shim (`--idle-exit`, detached), from a process of its own
    that exits: the daemon is not this test's child, as it is not `service install`'s."""
    code = (
        "from mcp_bridge.paths import bridge_paths\n"
        "from mcp_bridge.shim.connection import ask_current_daemon\n"
        "print(ask_current_daemon(bridge_paths(), 'status')['pid'])\n"
    )
    done = subprocess.run(
        [REAL_PYTHON, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    return int(done.stdout)


# -- uninstall ----------------------------------------------------------------------------


def test_uninstall_ends_and_deletes_the_task_and_removes_the_file(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    service_cli(capsys, "install")
    windows.forget_calls()

    code, out, err = service_cli(capsys, "uninstall")

    assert code == 0, err
    assert windows.calls() == [
        QUERY,
        ["/End", "/TN", "mcp-bridge-daemon"],
        ["/Delete", "/TN", "mcp-bridge-daemon", "/F"],
    ]
    assert not windows.registered()
    assert not windows.task_file.exists()
    assert f"removed {windows.task_file}" in out

    code, out, _ = service_cli(capsys, "uninstall")
    assert code == 0
    assert "nothing to remove" in out


def test_uninstall_of_a_task_that_is_not_running_deletes_it_all_the_same(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    service_cli(capsys, "install")
    (windows.state / "running").unlink()  # the daemon exited since
    windows.forget_calls()

    code, out, err = service_cli(capsys, "uninstall")

    assert code == 0, err
    assert (
        "note: `schtasks /End /TN mcp-bridge-daemon` failed: ERROR: The task is not running\n"
        in out
    )
    assert windows.calls()[-1] == ["/Delete", "/TN", "mcp-bridge-daemon", "/F"]
    assert not windows.registered()
    assert not windows.task_file.exists()


def test_uninstall_of_a_task_deleted_by_hand_removes_the_file_only(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    service_cli(capsys, "install")
    (windows.state / "registered").unlink()
    windows.forget_calls()

    code, _out, _ = service_cli(capsys, "uninstall")

    assert code == 0
    assert windows.calls() == [QUERY]
    assert not windows.task_file.exists()


def test_a_failing_delete_keeps_the_file_and_exits_non_zero(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    service_cli(capsys, "install")
    windows.fail("/Delete", 1, "ERROR: Access is denied.")

    code, _, err = service_cli(capsys, "uninstall")

    assert code == 1
    assert "`schtasks /Delete /TN mcp-bridge-daemon /F` failed: ERROR: Access is denied. " in err
    assert "by hand: schtasks /Delete /TN mcp-bridge-daemon /F" in err
    assert windows.task_file.exists()  # the task is still registered: so is its file


def test_uninstall_without_schtasks_removes_nothing(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    service_cli(capsys, "install")
    monkeypatch.setenv("PATH", str(windows.root / "nowhere"))

    code, _, err = service_cli(capsys, "uninstall")

    assert code == 1
    assert "schtasks was not found on PATH" in err
    assert windows.task_file.exists()
