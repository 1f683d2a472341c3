"""The storm brake: a server whose logins keep being started without one completing gets a
clear error instead of another browser tab (users of other bridges have seen dozens of tabs,
docs/oauth-in-the-wild.md §2). Knows a clock, not logins.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mcp_bridge.auth.errors import AuthError

__all__ = ["LOGIN_WINDOW_S", "MAX_LOGINS_PER_WINDOW", "LoginBrake"]

MAX_LOGINS_PER_WINDOW = 3
LOGIN_WINDOW_S = 300.0


class LoginBrake:
    """At most `max_starts` logins started within `window_s` without one completing."""

    def __init__(
        self,
        *,
        max_starts: int = MAX_LOGINS_PER_WINDOW,
        window_s: float = LOGIN_WINDOW_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._max_starts = max_starts
        self._window_s = window_s
        self._clock = clock
        self._starts: list[float] = []

    def start(self, server: str) -> None:
        """Record a login start; AuthError when too many went unfinished recently."""
        now = self._clock()
        self._starts = [t for t in self._starts if now - t < self._window_s]
        if len(self._starts) >= self._max_starts:
            wait_s = self._window_s - (now - self._starts[0])
            raise AuthError(
                f"{len(self._starts)} logins to {server} were started in the last "
                f"{self._window_s / 60:.0f} minutes and none completed; not opening another",
                next_step=f"Run `mcp-bridge login {server}` in a terminal to see what fails, "
                f"or wait {wait_s:.0f} s",
            )
        self._starts.append(now)

    def completed(self) -> None:
        self._starts.clear()
