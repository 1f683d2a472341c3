"""`mcp-bridge service install|uninstall` on Windows: the Task Scheduler task, rendered,
written as UTF-16 and registered with schtasks.

No Windows and no Task Scheduler run here, so this is the one place with a fake: a
`schtasks` executable first on PATH (tests/fixtures/fake_schtasks.py, set up by
fixtures/windows_user.py) that records its argv and a copy of the /XML file it was given,
keeps "registered" and "running" the way Task Scheduler would, and fails with configured
exit codes and messages; in test_service_windows_lifecycle.py it also starts the task's
Command and Arguments, a real daemon. It is a real process that
service.py starts the way it would start schtasks.exe (argv, no shell); sys.platform says
win32 in-process, and the daemon transport is loopback TCP, as on Windows. Everything else
is the real code: the template, the XML escaping and encoding, the files, the start lock,
the handover from a running daemon."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.cli import service_files
from mcp_bridge.errors import ConfigError
from tests.fixtures.service_cli import service_cli
from tests.fixtures.windows_user import (
    QUERY,
    RUN,
    USER,
    Windows,
    create_argv,
    task_of,
    task_text,
)

# -- install ------------------------------------------------------------------------------


def test_install_registers_the_task_and_starts_it(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = service_cli(capsys, "install")

    assert code == 0, err
    assert windows.calls() == [QUERY, create_argv(windows.task_file), RUN]
    assert windows.given_task() == windows.task_file.read_bytes()
    task = task_of(windows.given_task())
    # pythonw.exe: a console program started at logon would show a console window.
    assert task_text(task, "t:Actions/t:Exec/t:Command") == f'"{windows.pythonw}"'
    assert task_text(task, "t:Actions/t:Exec/t:Arguments") == "-m mcp_bridge daemon"
    assert task_text(task, "t:Principals/t:Principal/t:UserId") == f"PC\\{USER}"
    assert task_text(task, "t:Triggers/t:LogonTrigger/t:UserId") == f"PC\\{USER}"
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
    service_cli(capsys, "install")
    windows.forget_calls()
    before = (windows.task_file.read_bytes(), windows.task_file.stat().st_mtime_ns)

    code, out, _ = service_cli(capsys, "install")

    assert code == 0
    assert windows.calls() == [QUERY]
    assert (windows.task_file.read_bytes(), windows.task_file.stat().st_mtime_ns) == before
    assert "nothing changed" in out
    assert "wrote" not in out


@pytest.mark.parametrize("gone", ["pythonw", "pythonw and the script"])
def test_a_changed_install_replaces_the_registered_task(
    windows: Windows, capsys: pytest.CaptureFixture[str], gone: str
) -> None:
    """Without pythonw.exe the task runs mcp-bridge.exe, and without that (run from a
    checkout) python.exe -m mcp_bridge."""
    service_cli(capsys, "install")
    windows.forget_calls()
    windows.pythonw.unlink()
    if gone == "pythonw and the script":
        windows.script.unlink()

    code, _out, err = service_cli(capsys, "install")

    assert code == 0, err
    assert windows.calls() == [QUERY, create_argv(windows.task_file), RUN]
    task = task_of(windows.given_task())
    command = task_text(task, "t:Actions/t:Exec/t:Command")
    arguments = task_text(task, "t:Actions/t:Exec/t:Arguments")
    if gone == "pythonw":
        assert (command, arguments) == (f'"{windows.script}"', "daemon")
    else:
        assert (command, arguments) == (f'"{windows.python}"', "-m mcp_bridge daemon")


def test_dry_run_shows_the_task_and_the_commands_and_changes_nothing(
    windows: Windows, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = service_cli(capsys, "install", "--dry-run")

    assert code == 0
    assert windows.calls() == [QUERY]  # asks whether the task is registered; only that
    assert not windows.task_file.exists()
    assert not windows.registered()
    assert f"--- {windows.task_file} (would write)" in out
    assert '<?xml version="1.0" encoding="UTF-16"?>' in out
    assert "<Arguments>-m mcp_bridge daemon</Arguments>" in out
    assert f'would run: schtasks /Create /TN mcp-bridge-daemon /XML "{windows.task_file}" /F' in out
    assert "would run: schtasks /Run /TN mcp-bridge-daemon" in out


# -- failures -----------------------------------------------------------------------------


@pytest.mark.parametrize("verb", ["/Create", "/Run"])
def test_a_failing_schtasks_says_what_to_run_by_hand(
    windows: Windows, capsys: pytest.CaptureFixture[str], verb: str
) -> None:
    windows.fail(verb, 1, "ERROR: Access is denied.")

    code, _out, err = service_cli(capsys, "install")

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

    code, out, err = service_cli(capsys, "install")

    assert code == 1
    assert out == ""
    assert "schtasks was not found on PATH" in err
    assert "--dry-run` shows the task and the schtasks commands to run by hand" in err
    assert not windows.task_file.parent.exists()


def test_without_schtasks_a_dry_run_still_shows_the_task_and_the_commands(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(windows.root / "nowhere"))

    code, out, _ = service_cli(capsys, "install", "--dry-run")

    assert code == 0
    assert "note: schtasks was not found on PATH" in out
    assert "<Arguments>-m mcp_bridge daemon</Arguments>" in out
    assert "would run: schtasks /Run /TN mcp-bridge-daemon" in out
    assert not windows.task_file.parent.exists()


def test_an_unknown_windows_user_is_refused_before_anything_runs(
    windows: Windows, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("USERDOMAIN")

    code, _out, err = service_cli(capsys, "install")

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

    code, _, err = service_cli(capsys, "install")

    assert code == 2
    assert "would read a % in it as the start of an environment variable" in err
    assert windows.calls() == []


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

    if '"' in program:
        with pytest.raises(ConfigError, match="cannot hold a quote"):
            service_files.render_task_xml([program, *rest], user)
        return
    data = service_files.encode_task_xml(service_files.render_task_xml([program, *rest], user))

    task = task_of(data)

    command = task_text(task, "t:Actions/t:Exec/t:Command")
    assert command == (f'"{program}"' if any(c.isspace() for c in program) else program)
    assert task_text(task, "t:Actions/t:Exec/t:Arguments") == subprocess.list2cmdline(
        [*rest, "daemon"]
    )
    assert task_text(task, "t:Principals/t:Principal/t:UserId") == user


@pytest.mark.parametrize("bad", ["C:\\a\x01b\\mcp-bridge.exe", "C:\\\udc80\\x.exe", "\uffff"])
def test_a_non_xml_character_is_refused(bad: str) -> None:
    with pytest.raises(ConfigError, match="XML cannot carry a character"):
        service_files.render_task_xml([bad], "PC\\me")
