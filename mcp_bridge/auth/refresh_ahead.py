"""The background refresh: while nobody calls, renew one server's tokens ahead of expiry,
so a request never waits for a refresh and a sliding refresh-token lifetime stays alive.
The loop only decides when to ask; what is due and the refresh itself are the token
manager's (token_manager.py), the back-off after a failure refresh_timing.py's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Protocol

from mcp_bridge.auth.errors import AuthError
from mcp_bridge.auth.refresh_timing import MAX_BACKOFF_S
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.errors import BridgeError

__all__ = ["WAKE_CHECK_S", "RenewedTokens", "refresh_ahead"]

log = logging.getLogger(__name__)

# The loop sleeps on the event loop's clock, which stops while the machine sleeps; the
# tokens expire on the wall clock, which does not. Waking at least this often to look at
# the wall clock refreshes a token that fell due during a sleep soon after.
WAKE_CHECK_S = 30.0


class RenewedTokens(Protocol):
    """What the loop needs of a token manager."""

    mcp_url: str
    changed: asyncio.Event  # set whenever the tokens held change (login, refresh, logout)

    async def load(self) -> None: ...
    def refresh_due(self) -> float | None: ...
    async def refresh(self) -> TokenSet: ...
    def defer_refresh(self, until: float) -> None: ...


async def refresh_ahead(tokens: RenewedTokens, *, clock: Callable[[], float]) -> None:
    """Refresh `tokens` whenever they fall due, until cancelled. A failed refresh either
    dropped the tokens (nothing is due until a login) or pushed the due time back (the
    back-off), so the loop never asks in a tight loop."""
    await tokens.load()
    while True:
        tokens.changed.clear()
        due = tokens.refresh_due()
        delay = None if due is None else min(max(due - clock(), 0.0), WAKE_CHECK_S)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await tokens.changed.wait()
            continue  # the tokens changed: recompute
        if due is not None and clock() < due:
            # The timer ran on the event loop's clock, the deadline is on `clock` (the
            # wall clock, or a test's): wait for the one the tokens are judged by.
            continue
        try:
            await tokens.refresh()
        except AuthError as exc:
            log.info("background refresh for %s failed: %s", tokens.mcp_url, exc)
        except BridgeError as exc:  # the vault (a locked keyring): try again later
            log.warning("background refresh for %s failed: %s", tokens.mcp_url, exc)
            tokens.defer_refresh(clock() + MAX_BACKOFF_S)
