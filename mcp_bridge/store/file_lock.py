"""The vault's lock: an asyncio lock in front of a cross-process file lock.

Knows locking, nothing about what the lock protects.

Theory of operation. Processes exclude each other with a ProcessFileLock
(mcp_bridge/process_lock.py: `flock` on POSIX, `msvcrt.locking` on Windows) on a dedicated
lock file. Tasks inside one process exclude each other with an `asyncio.Lock` taken
*first*: a file lock is owned by an open file, not by a task, so sharing one file-lock
object between tasks would let them all in at once (three tasks were seen holding one
filelock.AsyncFileLock at a time).

Acquisition polls the non-blocking lock call rather than blocking in a thread: a blocking
`flock` cannot be cancelled, and a cancelled waiter must not end up holding the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

from mcp_bridge.errors import VaultError
from mcp_bridge.process_lock import FIRST_POLL_S, MAX_POLL_S, ProcessFileLock

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT_S = 60.0


class LockTimeout(VaultError):
    """Another process held the vault lock for longer than we were willing to wait."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__(
            f"Another mcp-bridge process held the vault lock {path} for over {timeout_s:.0f} s",
            next_step="Retry; if it keeps happening, stop other mcp-bridge processes "
            "(a lock is released as soon as its holder exits)",
        )


class AsyncVaultLock:
    """One task at a time in this process, one process at a time on this machine."""

    def __init__(self, path: Path, *, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> None:
        self.path = path
        self.timeout_s = timeout_s
        self._task_lock = asyncio.Lock()
        self._file_lock = ProcessFileLock(path)

    @contextlib.asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.timeout_s):
                await self._task_lock.acquire()
        except TimeoutError:
            raise LockTimeout(self.path, self.timeout_s) from None
        try:
            await self._acquire_file_lock()
            try:
                yield
            finally:
                self._file_lock.release()
        finally:
            self._task_lock.release()

    async def _acquire_file_lock(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        pause = FIRST_POLL_S
        waited = False
        while not self._file_lock.try_acquire():
            if time.monotonic() >= deadline:
                raise LockTimeout(self.path, self.timeout_s)
            if not waited:
                log.debug("waiting for the vault lock %s", self.path)
                waited = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, MAX_POLL_S)
