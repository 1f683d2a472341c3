"""What `mcp-bridge login` shows while it waits: on a terminal, one line kept current
(what it waits for, for how long, how to cancel); elsewhere (a pipe, CI) a single line
once the browser step starts, since carriage returns would only litter a log.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TextIO

__all__ = ["LoginProgress", "progress_text"]

# How often the line is redrawn: the seconds count is what moves.
TICK_S = 0.25
_CLEAR = "\r\x1b[K"  # carriage return, erase to the end of the line


def progress_text(server: str, sign_in_url: str | None, waited_s: float | None) -> str:
    """The text for the login's current step; `waited_s` None: without a seconds count."""
    if sign_in_url is None:
        return f"mcp-bridge: preparing the sign-in to {server} ... (Ctrl-C cancels)"
    waited = "" if waited_s is None else f", {int(waited_s)} s"
    return f"mcp-bridge: waiting for the sign-in in the browser{waited} (Ctrl-C cancels)"


class LoginProgress:
    """A `Notify` for the login (messages go above the live line) and the live line.

    `run(pending_url)` redraws the line until cancelled; `pending_url` says whether the
    login is at its browser step (the authorization URL) or still preparing (None)."""

    def __init__(
        self,
        server: str,
        out: TextIO,
        *,
        live: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._server = server
        self._out = out
        self._live = live
        self._clock = clock
        self._shown = ""  # the live line now on screen ("" when none)

    def say(self, text: str) -> None:
        """Print a message (the URL to open, a rejected paste) above the live line."""
        self._erase()
        self._out.write(text + "\n")
        self._out.flush()

    async def run(self, pending_url: Callable[[], str | None]) -> None:
        waiting_since: float | None = None
        try:
            while True:
                url = pending_url()
                if url is None:
                    waiting_since = None
                elif waiting_since is None:
                    waiting_since = self._clock()
                    if not self._live:
                        self.say(progress_text(self._server, url, None))
                if self._live:
                    waited = 0.0 if waiting_since is None else self._clock() - waiting_since
                    self._draw(progress_text(self._server, url, waited))
                await asyncio.sleep(TICK_S)
        finally:
            self._erase()

    def _draw(self, line: str) -> None:
        if line != self._shown:
            self._out.write(_CLEAR + line)
            self._out.flush()
            self._shown = line

    def _erase(self) -> None:
        if self._shown:
            self._out.write(_CLEAR)
            self._out.flush()
            self._shown = ""
