"""The bridge's log files: private to the user (0600, rotated copies too), and in the
daemon one per server besides daemon.log.

The logs name servers, URLs and errors: nobody else's business, so the mode is set on
creation and kept through rotation rather than left to the umask.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
from pathlib import Path

from mcp_bridge.server_log import current_server_log

__all__ = ["ServerLogFiles", "private_rotating_file"]

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_MAX_BYTES = 5 * 1024 * 1024
_BACKUPS = 2


def private_rotating_file(path: Path) -> logging.handlers.RotatingFileHandler:
    """A rotating handler on `path` (made 0600, its directory 0700). Raises OSError."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _create_private(path)
    handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=_MAX_BYTES, backupCount=_BACKUPS, encoding="utf-8"
    )
    handler.rotator = _rotate_private
    handler.setFormatter(logging.Formatter(_FORMAT))
    return handler


class ServerLogFiles(logging.Handler):
    """Writes each record made while serving a server (server_log.serving) to
    `<directory>/<server>.log`; records about no server are left to the other handlers.
    Files open on first use; past MAX_OPEN the least recently used is closed, so a daemon
    serving many servers holds few descriptors."""

    MAX_OPEN = 16

    def __init__(self, directory: Path) -> None:
        super().__init__()
        self._directory = directory
        self._open: dict[str, logging.Handler] = {}

    def emit(self, record: logging.LogRecord) -> None:
        name = current_server_log()
        if name is None:
            return
        handler = self._open.pop(name, None)
        if handler is None:
            try:
                handler = private_rotating_file(self._directory / f"{name}.log")
            except OSError:
                self.handleError(record)
                return
            if len(self._open) >= self.MAX_OPEN:
                self._open.pop(next(iter(self._open))).close()
        self._open[name] = handler  # (re)inserted last: the dict's order is the LRU order
        handler.handle(record)

    def close(self) -> None:
        for handler in self._open.values():
            handler.close()
        self._open.clear()
        super().close()


def _create_private(path: Path) -> None:
    """Create `path` 0600 unless it exists, then make it 0600 in any case (an older version
    left it to the umask). The handler then opens the file as it is: appending keeps the
    mode."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)


def _rotate_private(source: str, dest: str) -> None:
    """The handler's rollover step: the rename keeps the 0600 mode in the rotated copy, and
    the fresh file the handler opens next must exist 0600 before it does (it would create
    it under the umask). Older copies are only renamed, so they keep their 0600."""
    if os.path.exists(source):
        os.rename(source, dest)
    _create_private(Path(source))
