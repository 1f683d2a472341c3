"""Replacing a file so that a crash at any instant leaves the old or the new one, whole.

Knows files, not what is in them; the bottom layer, so the vault, servers.toml, the answer
cache, service units and desktop-client configs all write the one way. Callers keep to one
writer at a time (the vault's lock; one CLI command for the others).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

_TMP_PREFIX = "."
_TMP_SUFFIX = ".tmp"


def write_atomically(path: Path, data: bytes) -> None:
    """Make `path` hold `data`: temp file in the same directory (0600), fsync, os.replace,
    fsync the directory. The temp file holds exactly `data`, nothing else, ever."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    remove_stale_temps(path)
    tmp = path.with_name(f"{_TMP_PREFIX}{path.name}.{os.getpid()}{_TMP_SUFFIX}")
    # O_EXCL after the cleanup above: a leftover of ours was just removed, and a symlink
    # planted at this name makes the open fail instead of writing through it.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o600)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)  # the bytes are on disk before the name points at them
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_directory(path.parent)  # the rename itself survives a power cut


def remove_stale_temps(path: Path) -> None:
    """Delete temp files a killed writer left behind (encrypted, but clutter)."""
    for stale in path.parent.glob(f"{_TMP_PREFIX}{path.name}.*{_TMP_SUFFIX}"):
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
            log.debug("removed a temp file left by an interrupted write: %s", stale.name)


def move_aside(path: Path, label: str) -> Path:
    """Rename `path` to `<path>.<label>-<UTC timestamp>` (never overwriting) and return the
    new name. The file is kept, not deleted: its owner may still recover it."""
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    for attempt in range(1000):
        suffix = f"-{attempt}" if attempt else ""
        target = path.with_name(f"{path.name}.{label}-{stamp}{suffix}")
        if target.exists():
            continue
        os.replace(path, target)  # under the vault lock: nobody else creates `target`
        _fsync_directory(path.parent)
        return target
    raise FileExistsError(f"too many {label} copies of {path} this second")


def _fsync_directory(directory: Path) -> None:
    if os.name != "posix":  # Windows cannot open a directory; NTFS journals the rename
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
