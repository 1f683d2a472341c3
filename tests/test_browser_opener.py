"""The browser opener: which URLs it refuses, and that $BROWSER runs without a shell."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_bridge.auth.browser import _LAUNCHER, open_in_browser
from mcp_bridge.auth.errors import UrlRefused
from mcp_bridge.auth.urlpolicy import check_browser_url
from mcp_bridge.errors import AuthError

REFUSED = {
    "javascript": "javascript:alert(document.cookie)",
    "JavaScript mixed case": "JavaScript:alert(1)",
    "data": "data:text/html,<script>alert(1)</script>",
    "file": "file:///etc/passwd",
    "vbscript": "vbscript:msgbox(1)",
    "ftp": "ftp://as.example/authorize",
    "http to a public host": "http://as.example/authorize",
    "newline": "https://as.example/authorize\n?x=1",
    "NUL": "https://as.example/auth\x00orize",
    "DEL": "https://as.example/auth\x7forize",
    "C1 NEL": "https://as.example/auth\x85orize",
    "space": "https://as.example/authorize?x=a b",
    "userinfo": "https://trusted.example@evil.example/authorize",
    "backslash": "https://trusted.example" + chr(92) + ".evil.example/authorize",
    "no host": "https:///authorize",
    "empty": "",
    "huge": "https://as.example/authorize?x=" + "a" * 20_000,
}

ACCEPTED = [
    "https://as.example/authorize?response_type=code&state=x",
    "http://127.0.0.1:9100/authorize?x=1",
    "http://127.1.2.3/authorize",
    "http://[::1]:9100/authorize",
    "http://localhost:9100/authorize",
]


@pytest.mark.parametrize("url", REFUSED.values(), ids=REFUSED.keys())
def test_unsafe_authorization_urls_are_refused(url: str) -> None:
    with pytest.raises(AuthError, match=r"refusing|only https|empty|cannot be parsed"):
        check_browser_url(url)


def test_refusal_names_the_scheme_and_the_next_step() -> None:
    with pytest.raises(AuthError) as caught:
        check_browser_url("javascript:alert(1)")
    assert "javascript:" in str(caught.value)
    assert "owner" in caught.value.next_step


@pytest.mark.parametrize("url", ACCEPTED)
def test_https_and_loopback_http_are_accepted(url: str) -> None:
    assert check_browser_url(url) == url


async def test_refused_url_never_reaches_the_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "argv.json"
    monkeypatch.setenv("BROWSER", str(write_script(tmp_path, argv_recorder(record))))
    with pytest.raises(AuthError):
        await open_in_browser("javascript:alert(1)")
    assert not record.exists()


def write_script(directory: Path, body: str, name: str = "browser") -> Path:
    script = directory / name
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(0o755)
    return script


def argv_recorder(record: Path, *, exit_status: int = 0) -> str:
    return (
        "import json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps(sys.argv))\n"
        f"sys.exit({exit_status})\n"
    )


async def test_browser_env_is_honoured_and_the_url_is_one_argument_with_no_shell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "argv.json"
    script = write_script(tmp_path, argv_recorder(record))
    monkeypatch.setenv("BROWSER", str(script))
    monkeypatch.chdir(tmp_path)
    hostile = (
        "https://as.example/authorize?a=1;touch${IFS}PWNED1;&b=$(touch${IFS}PWNED2)"
        "&c=`touch${IFS}PWNED3`|touch${IFS}PWNED4&&touch${IFS}PWNED5"
    )
    assert await open_in_browser(hostile) is True
    assert json.loads(record.read_text()) == [str(script), hostile]
    assert sorted(os.listdir(tmp_path)) == ["argv.json", "browser"]


async def test_browser_env_is_read_at_each_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    monkeypatch.setenv("BROWSER", str(write_script(tmp_path, argv_recorder(first), "one")))
    assert await open_in_browser("https://as.example/a")
    monkeypatch.setenv("BROWSER", str(write_script(tmp_path, argv_recorder(second), "two")))
    assert await open_in_browser("https://as.example/b")
    assert json.loads(first.read_text())[1] == "https://as.example/a"
    assert json.loads(second.read_text())[1] == "https://as.example/b"


def without_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """No graphical session, so webbrowser has nothing but $BROWSER to try."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(name, raising=False)


async def test_no_runnable_browser_returns_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_display(monkeypatch)
    monkeypatch.setenv("BROWSER", str(tmp_path / "does-not-exist"))
    monkeypatch.setenv("PATH", str(tmp_path))  # no xdg-open, lynx or w3m to fall back on
    assert await open_in_browser("https://as.example/authorize") is False


async def test_failing_browser_command_returns_false(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    without_display(monkeypatch)
    record = tmp_path / "argv.json"
    monkeypatch.setenv("BROWSER", str(write_script(tmp_path, argv_recorder(record, exit_status=3))))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert await open_in_browser("https://as.example/authorize") is False
    assert record.exists()


async def test_browser_that_stays_open_counts_as_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pid_file = tmp_path / "pid"
    body = (
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)\n"
    )
    monkeypatch.setenv("BROWSER", str(write_script(tmp_path, body)))
    try:
        assert await open_in_browser("https://as.example/authorize", launch_wait_s=1.0) is True
    finally:
        for _ in range(300):  # a loaded machine may take a while to start the script
            if pid_file.exists() and pid_file.read_text():
                break
            await asyncio.sleep(0.1)
        if pid_file.exists() and pid_file.read_text():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)


def test_stdout_of_the_browser_never_reaches_ours(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = "import sys\nprint('browser chatter')\nprint('more', file=sys.stderr)\n"
    monkeypatch.setenv("BROWSER", str(write_script(tmp_path, body)))
    assert asyncio.run(open_in_browser("https://as.example/authorize")) is True
    out, err = capfd.readouterr()
    assert "browser chatter" not in out
    assert "more" not in err


def test_plain_http_to_another_host_needs_the_allow_http_opt_in() -> None:
    url = "http://dev-box.lan:8080/authorize"
    with pytest.raises(UrlRefused):
        check_browser_url(url)
    assert check_browser_url(url, allow_http=True) == url
    with pytest.raises(UrlRefused):  # the opt-in is about http, not about other schemes
        check_browser_url("javascript:alert(1)", allow_http=True)


async def test_a_webbrowser_module_in_the_current_directory_is_not_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "argv.json"
    monkeypatch.setenv("BROWSER", str(write_script(tmp_path, argv_recorder(record))))
    (tmp_path / "webbrowser.py").write_text(
        f"open({str(tmp_path / 'HIJACKED')!r}, 'w').close()\ndef open(*a, **k):\n    return True\n"
    )
    monkeypatch.chdir(tmp_path)
    assert await open_in_browser("https://as.example/authorize")
    assert record.exists()
    assert not (tmp_path / "HIJACKED").exists()


def launch_recorder(record: Path) -> str:
    """A $BROWSER script recording its own argv, its parent's argv (the launcher child that
    runs `webbrowser`, as `ps` shows it to every local user) and what its stdin is."""
    return (
        "import json, os, sys\n"
        "with open(f'/proc/{os.getppid()}/cmdline', 'rb') as cmdline:\n"
        "    parent = cmdline.read().decode('utf-8', 'replace').split(chr(0))\n"
        "record = {'argv': sys.argv, 'parent': parent, 'stdin': os.readlink('/proc/self/fd/0')}\n"
        f"open({str(record)!r}, 'w').write(json.dumps(record))\n"
    )


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
async def test_the_url_is_in_no_argv_of_ours_only_in_the_browsers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "launch.json"
    script = write_script(tmp_path, launch_recorder(record))
    monkeypatch.setenv("BROWSER", str(script))
    state = "st4te-Only-In-The-Browser"
    url = f"https://as.example/authorize?response_type=code&state={state}&x=caf\u00e9"
    assert await open_in_browser(url) is True
    seen = json.loads(record.read_text())
    assert seen["argv"] == [str(script), url]  # the browser still gets the URL, whole
    parent = " ".join(seen["parent"])
    assert sys.executable in parent  # it is the launcher's argv that was read
    assert "as.example" not in parent
    assert state not in parent
    assert seen["stdin"] == os.devnull  # the pipe the URL came on is not handed on


@pytest.mark.parametrize(
    ("sent", "opened"),
    [
        (b"https://as.example/authorize?state=s\n", True),
        (b"https://as.ex", False),  # cut short (no newline): could name another host
        (b"https://as.example/a\nhttps://evil.example/\n", False),
        (b"", False),
    ],
    ids=["whole", "cut short", "two lines", "nothing"],
)
def test_the_launcher_opens_only_a_whole_url_read_from_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sent: bytes, opened: bool
) -> None:
    record = tmp_path / "argv.json"
    monkeypatch.setenv("BROWSER", str(write_script(tmp_path, argv_recorder(record))))
    launcher = subprocess.run(
        [sys.executable, "-I", "-c", _LAUNCHER], input=sent, timeout=60, check=False
    )
    assert (launcher.returncode == 0) is opened
    assert record.exists() is opened
    if opened:
        assert json.loads(record.read_text())[1] == sent.decode().rstrip("\n")
