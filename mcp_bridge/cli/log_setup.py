"""Logging for the entry points: quiet stderr, a detailed per-server log file. (Importing
this module imports no logging: the CLI's argument parser reads LEVELS from it.)

Hosts show stderr to users (some flag every line as an error), so stderr gets warnings and
up by default; the log file gets everything at INFO or the chosen level. Only entry points
call this; library modules just use `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

LEVELS = ("debug", "info", "warning", "error")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(*, stderr_level: str = "warning", log_file: Path | None = None) -> None:
    # Imported here: `run`'s shim never logs, and logging.handlers alone costs it ~8 ms.
    import logging
    import logging.handlers

    root = logging.getLogger()
    root.handlers.clear()
    stderr_numeric = getattr(logging, stderr_level.upper())
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setLevel(stderr_numeric)
    stderr.setFormatter(logging.Formatter("mcp-bridge: %(levelname)s %(message)s"))
    root.addHandler(stderr)
    file_level = min(stderr_numeric, logging.INFO)
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            _create_private(log_file)
            to_file = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=5 * 1024 * 1024, backupCount=2, encoding="utf-8"
            )
            to_file.rotator = _rotate_private
        except OSError as exc:
            logging.getLogger(__name__).warning("cannot write the log file %s: %s", log_file, exc)
        else:
            to_file.setLevel(file_level)
            to_file.setFormatter(logging.Formatter(_FORMAT))
            root.addHandler(to_file)
    root.setLevel(file_level if log_file is not None else stderr_numeric)
    # aiohttp logs every access and connection hiccup at INFO; the transport reports
    # what matters itself.
    logging.getLogger("aiohttp").setLevel(logging.WARNING)


def _create_private(path: Path) -> None:
    """Create `path` 0600 unless it exists, then make it 0600 in any case (an older version
    left it to the umask). The log names servers, URLs and errors: nobody else's business.
    The handler then opens the file as it is: appending keeps the mode."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
    os.chmod(path, 0o600)


def _rotate_private(source: str, dest: str) -> None:
    """The handler's rollover step: the rename keeps the 0600 mode in the rotated copy, and
    the fresh file the handler opens next must exist 0600 before it does (it would create
    it under the umask). Older copies are only renamed, so they keep their 0600."""
    if os.path.exists(source):
        os.rename(source, dest)
    _create_private(Path(source))


def log_name_for(url_or_name: str) -> str:
    """A file-name-safe label for a server: `https://mcp.example.com/v1/mcp` ->
    `mcp.example.com-v1-mcp`."""
    label = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", url_or_name)
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")
    return label[:80] or "server"
