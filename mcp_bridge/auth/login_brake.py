"""The storm brake: a server whose logins keep being started without one completing gets a
clear error instead of another browser tab (users of other bridges have seen dozens of tabs,
docs/oauth-in-the-wild.md §2), another device code, or another request for a grant the
authorization server keeps refusing. Knows a clock, and the kind of login only to say
what it stopped; not how logins run.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mcp_bridge.auth.errors import AuthError
from mcp_bridge.auth.settings import OAuthSettings

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

    def start(self, server: str, settings: OAuthSettings) -> None:
        """Record the start of a login made with `settings`; AuthError, in the words of
        that kind of login, when too many went unfinished recently."""
        now = self._clock()
        self._starts = [t for t in self._starts if now - t < self._window_s]
        if len(self._starts) >= self._max_starts:
            raise self._refusal(server, settings, wait_s=self._window_s - (now - self._starts[0]))
        self._starts.append(now)

    def _refusal(self, server: str, settings: OAuthSettings, *, wait_s: float) -> AuthError:
        tried = f"{len(self._starts)} {settings.login_kind}s"
        within = f"in the last {self._window_s / 60:.0f} minutes"
        command, wait = settings.login_command(server), f"or wait {wait_s:.0f} s"
        if settings.grant.is_machine:
            return AuthError(
                f"{tried} for {server} were made {within} and none succeeded; not asking "
                "the authorization server again",
                next_step=f"Run `{command}` with the same client flags in a terminal to see "
                f"what fails, {wait}",
            )
        another = (
            "asking for another device code" if settings.device else "opening another browser tab"
        )
        return AuthError(
            f"{tried} to {server} were started {within} and none completed; not {another}",
            next_step=f"Run `{command}` in a terminal to see what fails, {wait}",
        )

    def completed(self) -> None:
        self._starts.clear()
