"""`mcp-bridge demo --no-browser`, the README's first command, end to end as a user runs it."""

from __future__ import annotations

import asyncio
import os
import sys


async def test_the_headless_demo_logs_in_and_calls_the_protected_server() -> None:
    demo = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mcp_bridge",
        "demo",
        "--no-browser",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={key: value for key, value in os.environ.items() if key != "BROWSER"},
    )
    out, err = await asyncio.wait_for(demo.communicate(), 180)
    shown = out.decode()
    assert demo.returncode == 0, shown + err.decode()
    assert "answered 401" in shown  # the bridge met the challenge...
    assert "/register -> 201" in shown  # ...registered itself...
    assert "logged in to" in shown  # ...and signed in
    assert "2 + 3 = 5" in shown
    assert shown.count('"method":"notifications/progress"') == 3
    assert "1 registrations, 1 authorizations, 1 token exchanges" in shown
    assert "bridge exited with status 0" in shown
