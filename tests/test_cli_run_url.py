"""`mcp-bridge run URL` refuses a URL it must not use before it touches stdio: the error is
a plain line on stderr, stdout stays empty, the exit code is not 0."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.daemon_process import stop_daemon


def run_bridge(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_bridge", "run", *args],
        env={"MCP_BRIDGE_HOME": str(home), "PATH": "/usr/bin:/bin"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://mcp.example.com/mcp", "scheme 'ftp'"),
        ("http://mcp.example.com/mcp", "--allow-http"),
        ("mcp.example.com/mcp", "has no host"),
    ],
)
def test_a_url_the_bridge_must_not_use_is_refused_up_front(
    url: str, reason: str, tmp_path: Path
) -> None:
    refused = run_bridge(tmp_path, url)
    assert refused.returncode != 0
    assert refused.stdout == ""
    assert reason in refused.stderr


def test_plain_http_off_loopback_needs_the_explicit_opt_in(tmp_path: Path) -> None:
    allowed = run_bridge(tmp_path, "--allow-http", "http://mcp.example.com/mcp")
    stop_daemon(tmp_path)
    assert allowed.returncode == 0  # stdin was empty: nothing to relay, a clean exit
    assert allowed.stderr == ""
