"""The line `mcp-bridge login` keeps current while it waits for the browser."""

from __future__ import annotations

import asyncio
import io

from mcp_bridge.cli.login_progress import LoginProgress, progress_text

SERVER = "https://mcp.example.com/mcp"
URL = "https://as.example.com/authorize?state=x"


def test_the_text_says_what_it_waits_for_and_how_to_cancel() -> None:
    assert progress_text(SERVER, None, None) == (
        f"mcp-bridge: preparing the sign-in to {SERVER} ... (Ctrl-C cancels)"
    )
    assert progress_text(SERVER, URL, 12.7) == (
        "mcp-bridge: waiting for the sign-in in the browser, 12 s (Ctrl-C cancels)"
    )
    assert "waiting for the sign-in in the browser (Ctrl-C" in progress_text(SERVER, URL, None)


class SteppedClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_on_a_terminal_one_line_is_redrawn_and_messages_go_above_it() -> None:
    out = io.StringIO()
    clock = SteppedClock()
    progress = LoginProgress(SERVER, out, live=True, clock=clock)
    pending: list[str | None] = [None]
    task = asyncio.create_task(progress.run(lambda: pending[0]))
    await asyncio.sleep(0.05)
    assert out.getvalue() == "\r\x1b[K" + progress_text(SERVER, None, None)
    progress.say("mcp-bridge: open this URL")
    pending[0] = URL
    clock.now += 3  # the browser step starts now: the count starts at 0
    await asyncio.sleep(0.3)
    clock.now += 5
    await asyncio.sleep(0.3)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    text = out.getvalue()
    assert "\r\x1b[Kmcp-bridge: open this URL\n" in text  # the live line erased first
    assert text.index(progress_text(SERVER, URL, 0)) < text.index(progress_text(SERVER, URL, 5))
    assert text.endswith("\r\x1b[K")  # nothing left behind when the login ends


async def test_elsewhere_one_plain_line_when_the_browser_step_starts() -> None:
    out = io.StringIO()
    progress = LoginProgress(SERVER, out, live=False)
    pending: list[str | None] = [None]
    task = asyncio.create_task(progress.run(lambda: pending[0]))
    await asyncio.sleep(0.05)
    pending[0] = URL
    await asyncio.sleep(0.6)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert out.getvalue() == progress_text(SERVER, URL, None) + "\n"
