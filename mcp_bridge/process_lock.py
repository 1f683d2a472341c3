"""An exclusive lock between processes on a file. Standard library only: the shim takes
one (the daemon's start lock) and the vault another (store/file_lock.py).

`fcntl.flock` on POSIX, `msvcrt.locking` on Windows, on a dedicated lock file; the kernel
drops the lock when its holder dies, so a SIGKILLed process never leaves it taken. A lock
belongs to an open file, not to a thread or a task: one holder per object.

Acquisition polls the non-blocking call rather than blocking: a blocking `flock` cannot be
interrupted by a deadline, and `msvcrt`'s blocking mode gives up on its own after 10 s.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

__all__ = ["ProcessFileLock"]

# Short first so an uncontended-but-busy lock is taken quickly, capped so a long wait
# costs little CPU on a loaded machine.
FIRST_POLL_S = 0.002
MAX_POLL_S = 0.05

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

    def acquire(self, timeout_s: float) -> None:
        """Take the lock, waiting for it for synchronous callers. Raises TimeoutError when
        another process holds it for longer than `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        pause = FIRST_POLL_S
        while not self.try_acquire():
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{self.path} was held by another process for {timeout_s} s")
            time.sleep(pause)
            pause = min(pause * 2, MAX_POLL_S)
