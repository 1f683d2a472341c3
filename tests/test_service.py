"""`mcp-bridge service install|uninstall` against a temporary HOME: the units it writes (and
systemd-analyze accepts), a second install, --dry-run, refusals, and the service manager's
commands on Linux and macOS.

No test here talks to a real service manager: PATH holds no systemctl, or
`service_managers.run_tool` is replaced by a recorder. Windows: test_service_windows.py; the
templates alone: test_service_templates.py."""

from __future__ import annotations

import fcntl
import os
import plistlib
import shutil
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

from mcp_bridge.cli import service, service_managers
from mcp_bridge.daemon import hello
from mcp_bridge.daemon.transport import TRANSPORT_ENV
from mcp_bridge.paths import bridge_paths
from tests.fixtures.service_cli import service_cli
from tests.fixtures.windows_user import fresh_user_dirs

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


@dataclass
class Home:
    root: Path
    unit_dir: Path
    python: Path
    script: Path

    @property
    def socket_unit(self) -> Path:
        return self.unit_dir / "mcp-bridge.socket"

    @property
    def service_unit(self) -> Path:
        return self.unit_dir / "mcp-bridge.service"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Home:
    """A Linux user with an empty HOME, mcp-bridge installed in a venv whose path needs
    quoting in a unit file, and no systemctl on PATH. Their shims use the Unix socket, the
    one transport a systemd or launchd service listens on, whichever the suite runs on."""
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv(TRANSPORT_ENV, "unix")
    fresh_user_dirs(monkeypatch, tmp_path / "home", tmp_path / "run")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "empty-bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    venv_bin = tmp_path / "my venv%$" / "bin"
    venv_bin.mkdir(parents=True)
    python = venv_bin / "python"
    python.symlink_to(sys.executable)
    script = venv_bin / "mcp-bridge"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))
    return Home(tmp_path, tmp_path / "config" / "systemd" / "user", python, script)


def _exec_start(unit_text: str) -> str:
    return next(line for line in unit_text.splitlines() if line.startswith("ExecStart="))


def _snapshot(*paths: Path) -> list[tuple[bytes, int]]:
    return [(path.read_bytes(), path.stat().st_mtime_ns) for path in paths]


# -- install and uninstall, no service manager ---------------------------------------------


def test_install_writes_both_units_with_the_absolute_executable(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = service_cli(capsys, "install")

    assert code == 0
    # The venv's path has a blank and a %: quoted, and escaped from systemd's specifiers
    # ($ is left alone: systemd expands variables in arguments only).
    assert _exec_start(home.service_unit.read_text()) == (
        f'ExecStart="{home.root}/my venv%%$/bin/mcp-bridge" daemon'
    )
    assert "@EXECUTABLE@" not in home.service_unit.read_text()
    assert "ListenStream=%t/mcp-bridge/daemon.sock" in home.socket_unit.read_text()
    assert f"wrote {home.socket_unit}" in out
    assert f"wrote {home.service_unit}" in out
    # No systemctl here: it says what to run instead, and still succeeds.
    assert "systemctl --user enable --now mcp-bridge.socket" in out


def test_a_second_install_changes_nothing_and_says_so(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    service_cli(capsys, "install")
    before = _snapshot(home.socket_unit, home.service_unit)

    code, out, _ = service_cli(capsys, "install")

    assert code == 0
    assert _snapshot(home.socket_unit, home.service_unit) == before
    assert "nothing changed" in out
    assert "wrote" not in out


def test_dry_run_prints_the_units_and_writes_nothing(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = service_cli(capsys, "install", "--dry-run")

    assert code == 0
    assert not home.unit_dir.exists()
    assert f"--- {home.service_unit} (would write)" in out
    assert "[Socket]" in out
    assert _exec_start(out).endswith('/bin/mcp-bridge" daemon')


def test_uninstall_removes_the_units_and_the_enable_link(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    service_cli(capsys, "install")
    wants = home.unit_dir / "sockets.target.wants" / "mcp-bridge.socket"
    wants.parent.mkdir()
    wants.symlink_to(home.socket_unit)  # what `systemctl --user enable` leaves

    code, out, _ = service_cli(capsys, "uninstall", "--dry-run")
    assert code == 0
    assert f"would remove {home.service_unit}" in out
    assert home.service_unit.exists()

    code, out, _ = service_cli(capsys, "uninstall")
    assert code == 0
    assert not any(os.path.lexists(p) for p in (home.socket_unit, home.service_unit, wants))
    assert f"removed {home.socket_unit}" in out

    code, out, _ = service_cli(capsys, "uninstall")
    assert code == 0
    assert "nothing to remove" in out


def test_without_a_script_the_unit_runs_python_dash_m(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    home.script.unlink()  # run from a checkout: no console script next to python

    assert service_cli(capsys, "install")[0] == 0

    assert _exec_start(home.service_unit.read_text()) == (
        f'ExecStart="{home.python}" -m mcp_bridge daemon'.replace("%", "%%")
    )


@pytest.mark.parametrize(
    ("refusal", "exit_code", "message"),
    [
        ("a path systemd cannot run", 2, "systemd cannot run"),
        ("MCP_BRIDGE_HOME", 2, "MCP_BRIDGE_HOME is set"),
        ("loopback TCP", 2, f"{TRANSPORT_ENV}=tcp is set"),
        ("loopback TCP under launchd", 2, f"{TRANSPORT_ENV}=tcp is set"),
        ("an unknown platform", 1, "not sunos5"),
    ],
)
def test_a_refused_install_says_why_and_writes_nothing(
    home: Home,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    refusal: str,
    exit_code: int,
    message: str,
) -> None:
    if refusal == "an unknown platform":
        monkeypatch.setattr(sys, "platform", "sunos5")
    elif refusal == "MCP_BRIDGE_HOME":  # shims with it set look for the daemon elsewhere
        monkeypatch.setenv("MCP_BRIDGE_HOME", str(home.root / "elsewhere"))
    elif refusal.startswith("loopback TCP"):  # shims look on loopback; the service is not there
        monkeypatch.setenv(TRANSPORT_ENV, "tcp")
        if refusal.endswith("launchd"):
            monkeypatch.setattr(sys, "platform", "darwin")
    else:
        monkeypatch.setattr(sys, "executable", str(home.root / "it's here" / "python"))

    code, out, err = service_cli(capsys, "install")

    assert code == exit_code
    assert message in err
    assert out == ""
    assert not (home.root / "config").exists()
    assert not (home.root / "home").exists()


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="needs systemd-analyze")
def test_the_installed_units_pass_systemd_analyze_verify(
    home: Home, capsys: pytest.CaptureFixture[str]
) -> None:
    assert SYSTEMD_ANALYZE is not None
    service_cli(capsys, "install")

    done = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--user", str(home.socket_unit), str(home.service_unit)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": "/usr/bin:/bin"},
        timeout=60,
        check=False,
    )

    # verify also checks that ExecStart's (quoted) program exists and is executable.
    assert done.returncode == 0, done.stderr
    assert "mcp-bridge" not in done.stderr, done.stderr


# -- install and uninstall with a service manager (recorded, not real) -----------------------


class Recorder:
    """Stands in for `service_managers.run_tool`: records each command, answers `is-active` with the
    socket's state, and checks that the shims' start lock is held while units load."""

    def __init__(self, *, active: bool) -> None:
        self.active = active
        self.calls: list[str] = []

    def __call__(self, argv: list[str]) -> tuple[int, str, str]:
        verb = argv[2]
        self.calls.append(verb)
        if verb == "is-active":
            return (0, "active", "") if self.active else (3, "inactive", "")
        if verb == "enable":
            assert _start_lock_is_held()
        return 0, "", ""


def _start_lock_is_held() -> bool:
    fd = os.open(bridge_paths().daemon_lock_file, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


@pytest.fixture
def recorder(home: Home, monkeypatch: pytest.MonkeyPatch) -> Recorder:
    """A user manager that answers, with mcp-bridge.socket not active yet."""
    recorder = Recorder(active=False)
    monkeypatch.setattr(service_managers, "run_tool", recorder)
    return recorder


def test_install_enables_the_socket_and_a_second_one_does_nothing(
    recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = service_cli(capsys, "install")

    assert code == 0
    assert recorder.calls == ["is-active", "daemon-reload", "enable"]
    assert "ran: systemctl --user enable --now mcp-bridge.socket" in out

    recorder.active, recorder.calls = True, []
    code, out, _ = service_cli(capsys, "install")
    assert code == 0
    assert recorder.calls == ["is-active"]
    assert "nothing changed" in out


def test_install_hands_over_from_a_daemon_that_run_started(
    recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    started = _FakeStartedDaemon(bridge_paths().daemon_socket(), recorder.calls)

    code, out, _ = service_cli(capsys, "install")
    started.thread.join(timeout=10)

    assert code == 0
    # Stopped (and its socket file gone) before systemd binds the path.
    assert recorder.calls == ["is-active", "stop", "daemon-reload", "enable"]
    assert "stopped the daemon" in out


class _FakeStartedDaemon:
    """A daemon `run` started: answers one `stop`, then removes its socket file."""

    def __init__(self, path: Path, log: list[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.listener.bind(os.fspath(path))
        self.listener.listen(1)
        self.path, self.log = path, log
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        with conn, conn.makefile("rb") as lines:
            request = hello.parse_hello(lines.readline())
            assert isinstance(request, hello.CommandHello)
            self.log.append(request.command)
            conn.sendall(hello.ok_reply(stopping=True) + b"\n")
        self.listener.close()
        self.path.unlink()


def test_uninstall_disables_then_removes_then_reloads(
    home: Home, recorder: Recorder, capsys: pytest.CaptureFixture[str]
) -> None:
    service_cli(capsys, "install")
    recorder.active, recorder.calls = True, []

    code, out, _ = service_cli(capsys, "uninstall")

    assert code == 0
    assert recorder.calls == ["is-active", "disable", "daemon-reload"]
    assert "ran: systemctl --user disable --now mcp-bridge.socket mcp-bridge.service" in out
    assert not home.unit_dir.joinpath("mcp-bridge.service").exists()


def test_on_macos_install_writes_the_agent_and_bootstraps_it(
    home: Home, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr(service, "HANDOVER_TIMEOUT_S", 0.1)  # no daemon will listen here
    calls: list[list[str]] = []

    def launchctl(argv: list[str]) -> tuple[int, str, str]:
        calls.append(argv[1:])
        not_loaded = argv[1] == "print" and argv[2].endswith("/dev.mcp-bridge.daemon")
        return (113 if not_loaded else 0), "", ""

    monkeypatch.setattr(service_managers, "run_tool", launchctl)

    code, out, _ = service_cli(capsys, "install")

    assert code == 0, out
    plist = home.root / "home" / "Library" / "LaunchAgents" / "dev.mcp-bridge.daemon.plist"
    arguments = plistlib.loads(plist.read_bytes())["ProgramArguments"]
    assert arguments == [str(home.script), "daemon"]
    assert bridge_paths().log_dir.is_dir()  # launchd would not create it
    assert calls[-1] == ["bootstrap", f"gui/{os.getuid()}", str(plist)]
