"""`mcp-bridge service install|uninstall` on Windows: the Task Scheduler task, rendered,
written as UTF-16 and registered with schtasks.

No Windows and no Task Scheduler run here, so this is the one place with a fake: a
`schtasks` executable first on PATH (tests/fixtures/fake_schtasks.py) that records its
argv and a copy of the /XML file it was given, keeps "registered" and "running" the way
Task Scheduler would, and fails with configured exit codes and messages; in one test it
also starts the task's Command and Arguments, a real daemon. It is a real process that
service.py starts the way it would start schtasks.exe (argv, no shell); sys.platform says
win32 in-process, and the daemon transport is loopback TCP, as on Windows. Everything else
is the real code: the template, the XML escaping and encoding, the files, the start lock,
the handover from a running daemon."""

from __future__ import annotations

import codecs
import contextlib
import json
import os
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

# Imported while sys.platform is still linux: these pick their platform's code at import.
import platformdirs  # noqa: F401
import pytest
from hypothesis import given
from hypothesis import strategies as st

import mcp_bridge.daemon.transport
import mcp_bridge.process_lock
import mcp_bridge.shim.connection
from mcp_bridge.cli import service, service_files
from mcp_bridge.errors import ConfigError
from mcp_bridge.paths import bridge_paths
from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon
from tests.fixtures import fake_schtasks
from tests.fixtures.bridge_process import is_running, wait_for_exit
from tests.test_service import TASK_NS, _cli

# Characters XML and the Windows command line treat specially, and a comment's `--`.
HOSTILE_DIR = 'R&D <tools> -- it\'s "here"'
USER = "o'neil&co"
REAL_PYTHON = sys.executable


@dataclass
class Windows:
    root: Path
    python: Path
    script: Path
    state: Path  # the fake schtasks's

    @property
    def task_file(self) -> Path:
        return bridge_paths().config_dir / "mcp-bridge-daemon.xml"

    def calls(self) -> list[list[str]]:
        log = self.state / "calls.jsonl"
        lines = log.read_text().splitlines() if log.exists() else []
        self.forget_calls()
        return [json.loads(line) for line in lines]

    def forget_calls(self) -> None:
        (self.state / "calls.jsonl").unlink(missing_ok=True)

    def fail(self, verb: str, code: int, message: str) -> None:
        faults_file = self.state / "faults.json"
        faults = json.loads(faults_file.read_text()) if faults_file.exists() else {}
        faults_file.write_text(json.dumps({**faults, verb: [code, message]}))

    def given_task(self) -> bytes:
        """The task file the last /Create was given, as schtasks read it."""
        return (self.state / "given.xml").read_bytes()

    def registered(self) -> bool:
        return (self.state / "registered").exists()


@pytest.fixture
def windows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Windows:
    """A Windows user (in-process: sys.platform, USERDOMAIN, USERNAME, loopback transport)
    with mcp-bridge.exe in a venv whose path XML and the command line must escape, and
    the fake schtasks alone on PATH."""
    monkeypatch.setattr(sys, "platform", "win32")
    monkeypatch.setenv("USERDOMAIN", "PC")
    monkeypatch.setenv("USERNAME", USER)
    monkeypatch.setenv(mcp_bridge.daemon.transport.TRANSPORT_ENV, "tcp")
    monkeypatch.setattr(service, "HANDOVER_TIMEOUT_S", 0.1)  # no daemon starts here
    monkeypatch.setenv("HOME", str(tmp_path / "my home"))
    for name in ("MCP_BRIDGE_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    venv = tmp_path / HOSTILE_DIR / "Scripts"
    venv.mkdir(parents=True)
    python = venv / "python.exe"
    # Not a link: a venv's python finds its venv beside the path it was started by.
    python.write_text(f'#!/bin/sh\nexec "{REAL_PYTHON}" "$@"\n')
    python.chmod(0o755)
    script = venv / "mcp-bridge.exe"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    bin_dir, state = tmp_path / "bin", tmp_path / "schtasks-state"
    bin_dir.mkdir()
    state.mkdir()
    schtasks = bin_dir / "schtasks.exe"  # found through PATHEXT, as on Windows
    schtasks.write_text(f"#!{REAL_PYTHON}\n" + Path(fake_schtasks.__file__).read_text())
    schtasks.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("PATHEXT", ".exe")
    monkeypatch.setenv("FAKE_SCHTASKS_STATE", str(state))
    return Windows(tmp_path, python, script, state)


def _create(task_file: Path) -> list[str]:
    return ["/Create", "/TN", "mcp-bridge-daemon", "/XML", str(task_file), "/F"]


RUN = ["/Run", "/TN", "mcp-bridge-daemon"]
QUERY = ["/Query", "/TN", "mcp-bridge-daemon"]


def _task(data: bytes) -> ET.Element:
    # What Task Scheduler reads: UTF-16 LE with a BOM, declared as UTF-16 (it refuses
    # UTF-8, and a declaration that disagrees with the bytes).
    assert data.startswith(codecs.BOM_UTF16_LE)
    assert data[2:].decode("utf-16-le").startswith('<?xml version="1.0" encoding="UTF-16"?>')
    return ET.fromstring(data)


def _text(task: ET.Element, path: str) -> str | None:
    return task.findtext(path, namespaces=TASK_NS)


# -- install ------------------------------------------------------------------------------


def test_install_registers_the_task_and_starts_it(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _cli(capsys, "install")

    assert code == 0, err
    assert windows.calls() == [QUERY, _create(windows.task_file), RUN]
    assert windows.given_task() == windows.task_file.read_bytes()
    task = _task(windows.given_task())
    assert _text(task, "t:Actions/t:Exec/t:Command") == str(windows.script)
    assert _text(task, "t:Actions/t:Exec/t:Arguments") == "daemon"
    assert _text(task, "t:Principals/t:Principal/t:UserId") == f"PC\\{USER}"
    assert _text(task, "t:Triggers/t:LogonTrigger/t:UserId") == f"PC\\{USER}"
    # Escaped, not dropped in raw: the hostile path and user stay well-formed XML.
    raw = windows.given_task().decode("utf-16")
    assert "R&amp;D &lt;tools&gt;" in raw
    assert "PC\\o'neil&amp;co</UserId>" in raw
    assert "@EXECUTABLE@" not in raw
    assert "@USER@" not in raw
    assert f"wrote {windows.task_file}" in out
    # Printed as one types it in cmd.exe: the path with blanks in double quotes.
    assert f'ran: schtasks /Create /TN mcp-bridge-daemon /XML "{windows.task_file}" /F' in out
    assert "ran: schtasks /Run /TN mcp-bridge-daemon" in out


def test_a_second_install_changes_nothing_and_says_so(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli(capsys, "install")
    windows.forget_calls()
    before = (windows.task_file.read_bytes(), windows.task_file.stat().st_mtime_ns)

    code, out, _ = _cli(capsys, "install")

    assert code == 0
    assert windows.calls() == [QUERY]
    assert (windows.task_file.read_bytes(), windows.task_file.stat().st_mtime_ns) == before
    assert "nothing changed" in out
    assert "wrote" not in out


def test_a_moved_install_replaces_the_registered_task(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli(capsys, "install")
    windows.forget_calls()
    windows.script.unlink()  # now run from a checkout: python.exe -m mcp_bridge

    code, _out, err = _cli(capsys, "install")

    assert code == 0, err
    assert windows.calls() == [QUERY, _create(windows.task_file), RUN]
    task = _task(windows.given_task())
    assert _text(task, "t:Actions/t:Exec/t:Command") == str(windows.python)
    assert _text(task, "t:Actions/t:Exec/t:Arguments") == "-m mcp_bridge daemon"


def test_dry_run_shows_the_task_and_the_commands_and_changes_nothing(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _cli(capsys, "install", "--dry-run")

    assert code == 0
    assert windows.calls() == [QUERY]  # asks whether the task is registered; only that
    assert not windows.task_file.exists()
    assert not windows.registered()
    assert f"--- {windows.task_file} (would write)" in out
    assert '<?xml version="1.0" encoding="UTF-16"?>' in out
    assert "<Arguments>daemon</Arguments>" in out
    assert f'would run: schtasks /Create /TN mcp-bridge-daemon /XML "{windows.task_file}" /F' in out
    assert "would run: schtasks /Run /TN mcp-bridge-daemon" in out


def test_install_hands_the_daemon_over_to_the_task_and_uninstall_ends_it(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real daemons on loopback TCP: one that `run` started, then the ones the task
    starts. The fake's /Run ignores a start while the task's daemon lives, as Task
    Scheduler does, so a reinstall that did not stop it first would keep the old one."""
    monkeypatch.setattr(service, "HANDOVER_TIMEOUT_S", 15.0)
    windows.script.write_text(f'#!/bin/sh\nexec "{REAL_PYTHON}" -m mcp_bridge "$@"\n')
    (windows.state / "spawns").touch()
    paths = bridge_paths()
    pids = [_start_a_daemon_as_run_does()]
    try:
        code, out, err = _cli(capsys, "install")

        assert code == 0, err
        assert "stopped the daemon that was running" in out
        assert "did not answer" not in out
        assert not is_running(pids[0])
        pids.append(int((windows.state / "running").read_text()))
        assert ask_daemon(paths, "status")["pid"] == pids[1]

        windows.script.unlink()  # moved: the task now runs python.exe -m mcp_bridge
        code, out, err = _cli(capsys, "install")

        assert code == 0, err
        assert "stopped the daemon that was running" in out
        pids.append(int((windows.state / "running").read_text()))
        assert pids[2] != pids[1]
        assert not is_running(pids[1])
        assert ask_daemon(paths, "status")["pid"] == pids[2]

        code, out, err = _cli(capsys, "uninstall")

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


# -- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["/Create", "/Run"])
def test_a_failing_schtasks_says_what_to_run_by_hand(
    windows: Windows, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    windows.fail(verb, 1, "ERROR: Access is denied.")

    code, _out, err = _cli(capsys, "install")

    assert code == 1
    assert "Traceback" not in err
    if verb == "/Create":
        assert f'/XML "{windows.task_file}" /F` failed: ERROR: Access is denied. ' in err
        assert "by hand: schtasks /Create" in err
        assert "; schtasks /Run /TN mcp-bridge-daemon" in err
    else:
        assert "`schtasks /Run /TN mcp-bridge-daemon` failed: ERROR: Access is denied. " in err
        assert err.endswith("by hand: schtasks /Run /TN mcp-bridge-daemon\n")
    assert "schtasks /Query /TN mcp-bridge-daemon /V /FO LIST" in err


def test_without_schtasks_nothing_is_written_and_it_says_why(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(windows.root / "nowhere"))

    code, out, err = _cli(capsys, "install")

    assert code == 1
    assert out == ""
    assert "schtasks was not found on PATH" in err
    assert "--dry-run` shows the task and the schtasks commands to run by hand" in err
    assert not windows.task_file.parent.exists()


def test_without_schtasks_a_dry_run_still_shows_the_task_and_the_commands(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(windows.root / "nowhere"))

    code, out, _ = _cli(capsys, "install", "--dry-run")

    assert code == 0
    assert "note: schtasks was not found on PATH" in out
    assert "<Arguments>daemon</Arguments>" in out
    assert "would run: schtasks /Run /TN mcp-bridge-daemon" in out
    assert not windows.task_file.parent.exists()


def test_an_unknown_windows_user_is_refused_before_anything_runs(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USERDOMAIN")

    code, _out, err = _cli(capsys, "install")

    assert code == 2
    assert "USERDOMAIN or USERNAME is not set" in err
    assert windows.calls() == []
    assert not windows.task_file.exists()


def test_a_percent_in_the_path_is_refused(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    venv = windows.root / "100%USERNAME%" / "Scripts"
    venv.mkdir(parents=True)
    (venv / "python.exe").symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(venv / "python.exe"))

    code, _, err = _cli(capsys, "install")

    assert code == 2
    assert "would read a % in it as the start of an environment variable" in err
    assert windows.calls() == []


# -- uninstall ----------------------------------------------------------------------------


def test_uninstall_ends_and_deletes_the_task_and_removes_the_file(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli(capsys, "install")
    windows.forget_calls()

    code, out, err = _cli(capsys, "uninstall")

    assert code == 0, err
    assert windows.calls() == [
        QUERY,
        ["/End", "/TN", "mcp-bridge-daemon"],
        ["/Delete", "/TN", "mcp-bridge-daemon", "/F"],
    ]
    assert not windows.registered()
    assert not windows.task_file.exists()
    assert f"removed {windows.task_file}" in out

    code, out, _ = _cli(capsys, "uninstall")
    assert code == 0
    assert "nothing to remove" in out


def test_uninstall_of_a_task_that_is_not_running_deletes_it_all_the_same(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli(capsys, "install")
    (windows.state / "running").unlink()  # the daemon exited since
    windows.forget_calls()

    code, out, err = _cli(capsys, "uninstall")

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
    _cli(capsys, "install")
    (windows.state / "registered").unlink()
    windows.forget_calls()

    code, _out, _ = _cli(capsys, "uninstall")

    assert code == 0
    assert windows.calls() == [QUERY]
    assert not windows.task_file.exists()


def test_a_failing_delete_keeps_the_file_and_exits_non_zero(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    _cli(capsys, "install")
    windows.fail("/Delete", 1, "ERROR: Access is denied.")

    code, _, err = _cli(capsys, "uninstall")

    assert code == 1
    assert "`schtasks /Delete /TN mcp-bridge-daemon /F` failed: ERROR: Access is denied. " in err
    assert "by hand: schtasks /Delete /TN mcp-bridge-daemon /F" in err
    assert windows.task_file.exists()  # the task is still registered: so is its file


def test_uninstall_without_schtasks_removes_nothing(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _cli(capsys, "install")
    monkeypatch.setenv("PATH", str(windows.root / "nowhere"))

    code, _, err = _cli(capsys, "uninstall")

    assert code == 1
    assert "schtasks was not found on PATH" in err
    assert windows.task_file.exists()


# -- the task's XML -----------------------------------------------------------------------


# Anything a Windows path or user name can hold: no control characters, no surrogates.
_path_text = st.text(
    st.one_of(
        st.sampled_from("&<>\"' -\\:]"),  # what XML and the command line treat specially
        # utf-8 cannot encode a lone surrogate: none is drawn.
        st.characters(min_codepoint=0x20, codec="utf-8", exclude_characters="%\ufffe\uffff"),
    ),
    min_size=1,
)


@given(program=_path_text, rest=st.lists(_path_text, max_size=3), user=_path_text)
def test_any_program_and_user_render_to_well_formed_utf16_xml(
    program: str, rest: list[str], user: str
) -> None:
    import subprocess

    data = service_files.encode_task_xml(service_files.render_task_xml([program, *rest], user))

    task = _task(data)

    assert _text(task, "t:Actions/t:Exec/t:Command") == program
    assert _text(task, "t:Actions/t:Exec/t:Arguments") == subprocess.list2cmdline([*rest, "daemon"])
    assert _text(task, "t:Principals/t:Principal/t:UserId") == user


@pytest.mark.parametrize("bad", ["C:\\a\x01b\\mcp-bridge.exe", "C:\\\udc80\\x.exe", "\uffff"])
def test_a_non_xml_character_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="XML cannot carry a character"):
        service_files.render_task_xml([bad], "PC\\me")
