"""Logging for the entry points: quiet stderr, a detailed per-server log file.

Hosts show stderr to users (some flag every line as an error), so stderr gets warnings and
up by default; the log file gets everything at INFO or the chosen level. Only entry points
call this; library modules just use `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import logging
import logging.handlers
import re
import sys
from pathlib import Path

LEVELS = ("debug", "info", "warning", "error")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure_logging(*, stderr_level: str = "warning", log_file: Path | None = None) -> None:
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
            to_file = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=5 * 1024 * 1024, backupCount=2, encoding="utf-8"
            )
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


def log_name_for(url_or_name: str) -> str:
    """A file-name-safe label for a server: `https://mcp.example.com/v1/mcp` ->
    `mcp.example.com-v1-mcp`."""
    label = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", url_or_name)
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")
    return label[:80] or "server"
