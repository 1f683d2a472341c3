"""Headless Chromium driven by a test: a page opened with the DevTools protocol switched on
(read its text, click a button as a user would, wait for what follows), and a screenshot.

The browser is the real one, so what it sends is what a user's browser sends: its own Host,
Origin and Sec-Fetch-* headers on a form POST, and it obeys the page's Content-Security-Policy.
It runs with a throw-away profile in a process group of its own, killed as a whole at the
end (headless_chromium.kill_group), like the $BROWSER script beside this file.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.browsers.headless_chromium import (
    BASE_FLAGS,
    PROFILE_PREFIX,
    QUIET_ENV,
    VIRTUAL_TIME_BUDGET_MS,
    kill_group,
)

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
START_TIMEOUT_S = 60.0  # a cold Chromium on a loaded 2-core machine
WAIT_S = 60.0
POLL_S = 0.1
WINDOW = "1280,560"


class DevToolsPage:
    """One page of a running Chromium, over its DevTools WebSocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        """One DevTools command and its result (the events in between are skipped)."""
        call_id = next(self._ids)
        await self._socket.send_json({"id": call_id, "method": method, "params": params})
        async with asyncio.timeout(WAIT_S):
            async for message in self._socket:
                reply = json.loads(message.data)
                if reply.get("id") == call_id:
                    if "error" in reply:
                        raise RuntimeError(f"DevTools {method}: {reply['error']}")
                    result: dict[str, Any] = reply["result"]
                    return result
        raise RuntimeError("the DevTools connection closed")

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (DevTools runs it, not the page's
        own scripts, so the page's CSP does not apply to it)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} raised: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def text(self) -> str:
        return str(await self.evaluate("document.body ? document.body.innerText : ''"))

    async def wait_for_text(self, wanted: str, timeout_s: float = WAIT_S) -> str:
        """The page's text once it contains `wanted` (across navigations)."""
        async with asyncio.timeout(timeout_s):
            while True:
                with contextlib.suppress(RuntimeError):  # a navigation between two looks
                    text = await self.text()
                    if wanted in text:
                        return text
                await asyncio.sleep(POLL_S)

    async def click(self, selector: str) -> None:
        """Click the element a CSS selector finds, as a user's click does."""
        found = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " if (!e) return false; e.click(); return true; })()"
        )
        assert found, f"nothing on the page matches {selector}"


@contextlib.asynccontextmanager
async def chromium_page(url: str) -> AsyncIterator[DevToolsPage]:
    """Chromium showing `url`, and a DevTools connection to that page."""
    profile = Path(tempfile.mkdtemp(prefix=PROFILE_PREFIX))
    process = _start(profile, "--remote-debugging-port=0", url)
    try:
        port = await _devtools_port(profile, process)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/json/list") as listing:
                targets = await listing.json()
            (page,) = [target for target in targets if target["type"] == "page"]
            async with http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                yield DevToolsPage(socket)
    finally:
        kill_group(process)
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """The port Chromium chose: the first line of DevToolsActivePort in its profile."""
    marker = profile / "DevToolsActivePort"
    async with asyncio.timeout(START_TIMEOUT_S):
        while True:
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(marker.read_text().splitlines()[0])
            if process.poll() is not None:
                raise RuntimeError(f"Chromium exited with status {process.returncode}")
            await asyncio.sleep(POLL_S)


def screenshot(url: str, path: Path) -> None:
    """A PNG of `url` as Chromium renders it (its own --screenshot)."""
    profile = Path(tempfile.mkdtemp(prefix=PROFILE_PREFIX))
    process = _start(
        profile,
        f"--screenshot={path}",
        f"--window-size={WINDOW}",
        "--hide-scrollbars",
        f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}",
        url,
    )
    try:
        process.wait(timeout=START_TIMEOUT_S)
    finally:
        kill_group(process)
        shutil.rmtree(profile, ignore_errors=True)
    assert path.is_file(), f"Chromium wrote no {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", path


def _start(profile: Path, *args: str) -> subprocess.Popen[bytes]:
    """Chromium with a throw-away profile, in a process group of its own (kill_group)."""
    return subprocess.Popen(
        [CHROMIUM, *BASE_FLAGS, f"--user-data-dir={profile}", *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **QUIET_ENV},
        start_new_session=True,
    )
