"""How long to wait before the next attempt after consecutive connection failures.

A remote that is down must not turn a client's retries into a busy loop, and one that comes
back must be used again promptly: the delay doubles per failure, is capped, and resets on the
first success. Waiting holds no lock, so concurrent requests each wait on their own.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass


@dataclass(slots=True)
class ReconnectBackoff:
    first_delay_s: float = 0.2
    max_delay_s: float = 5.0
    consecutive_failures: int = 0

    @property
    def delay_s(self) -> float:
        """The wait before the next attempt: 0 after a success."""
        if self.consecutive_failures == 0:
            return 0.0
        return min(self.first_delay_s * 2.0 ** (self.consecutive_failures - 1), self.max_delay_s)

    async def wait(self) -> None:
        delay = self.delay_s
        if delay > 0:
            await asyncio.sleep(delay)

    def failed(self) -> None:
        self.consecutive_failures += 1

    def succeeded(self) -> None:
        self.consecutive_failures = 0
