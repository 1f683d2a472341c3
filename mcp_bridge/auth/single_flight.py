"""Single-flight: one task does a job that many callers want done (a refresh, a login), and
every caller awaits that task. Knows asyncio, not what the job is.

Callers await the task through `asyncio.shield`, so one caller's cancellation does not
cancel the job for the others; the task's error is retrieved even when every caller has
gone, or asyncio would log it as "never retrieved".
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

__all__ = ["SingleFlight"]

T = TypeVar("T")


class SingleFlight(Generic[T]):
    """At most one running task for one job; `cancel()` is its owner's way to end it."""

    def __init__(self) -> None:
        self._task: asyncio.Task[T] | None = None

    @property
    def is_running(self) -> bool:
        return self._task is not None and not self._task.done()

    def join(self, start: Callable[[], Coroutine[Any, Any, T]]) -> asyncio.Task[T]:
        """The running task, or a new one from `start()` when none runs. Await it with
        `asyncio.shield`."""
        task = self._task
        if task is None or task.done():
            task = asyncio.create_task(start())
            task.add_done_callback(_retrieve_exception)
            self._task = task
        return task

    async def cancel(self) -> None:
        """Cancel the running task, if any, and wait until it has ended."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def _retrieve_exception(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()
