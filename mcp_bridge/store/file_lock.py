"""The vault's locks: a cross-process advisory file lock, and an asyncio lock in front of it.

Knows files and locking, nothing about what the lock protects.

Theory of operation. Processes exclude each other with `fcntl.flock` (POSIX) or
`msvcrt.locking` (Windows) on a dedicated lock file; the kernel drops the lock when the
holder dies, so a SIGKILLed process never leaves the vault locked. Tasks inside one process
exclude each other with an `asyncio.Lock` taken *first*: a file lock is owned by an open
file, not by a task, so sharing one file-lock object between tasks would let them all in at
once (three tasks were seen holding one filelock.AsyncFileLock at a time).

Acquisition polls the non-blocking lock call rather than blocking in a thread: a blocking
`flock` cannot be cancelled, and a cancelled waiter must not end up holding the lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from mcp_bridge.errors import VaultError

log = logging.getLogger(__name__)

DEFAULT_LOCK_TIMEOUT_S = 60.0
# Short first so an uncontended-but-busy lock is taken quickly, capped so a long wait
# costs little CPU on a loaded machine.
_FIRST_POLL_S = 0.002
_MAX_POLL_S = 0.05

if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # byte 0; the file may be empty
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class LockTimeout(VaultError):
    """Another process held the vault lock for longer than we were willing to wait."""

    def __init__(self, path: Path, timeout_s: float) -> None:
        super().__init__(
            f"Another mcp-bridge process held the vault lock {path} for over {timeout_s:.0f} s",
            next_step="Retry; if it keeps happening, stop other mcp-bridge processes "
            "(a lock is released as soon as its holder exits)",
        )


class ProcessFileLock:
    """An exclusive lock between processes on `path`. Not re-entrant; one holder per object.

    Each `try_acquire` that succeeds must be paired with `release`.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def try_acquire(self) -> bool:
        """Take the lock if it is free right now; never blocks."""
        if self._fd is not None:
            raise RuntimeError(f"{self.path} is already held by this lock object")
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            taken = _try_lock(fd)
        except BaseException:
            os.close(fd)
            raise
        if not taken:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            _unlock(fd)
        finally:
            os.close(fd)  # closing drops the lock even if unlocking failed

    @contextlib.contextmanager
    def held(self, timeout_s: float = DEFAULT_LOCK_TIMEOUT_S) -> Iterator[None]:
        """Blocking acquisition for synchronous callers (scripts, benchmarks)."""
        deadline = time.monotonic() + timeout_s
        pause = _FIRST_POLL_S
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise LockTimeout(self.path, timeout_s)
            time.sleep(pause)
            pause = min(pause * 2, _MAX_POLL_S)
        try:
            yield
        finally:
            self.release()


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
        pause = _FIRST_POLL_S
        waited = False
        while not self._file_lock.try_acquire():
            if time.monotonic() >= deadline:
                raise LockTimeout(self.path, self.timeout_s)
            if not waited:
                log.debug("waiting for the vault lock %s", self.path)
                waited = True
            await asyncio.sleep(pause)
            pause = min(pause * 2, _MAX_POLL_S)
