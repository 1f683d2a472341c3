"""Logging for the entry points: quiet stderr, a detailed log file. (Importing this module
imports no logging: the CLI's argument parser reads LEVELS from it, and `run`'s shim never
logs; logging.handlers alone would cost it ~8 ms.)

Hosts show stderr to users (some flag every line as an error), so stderr gets warnings and
up by default; the log file gets everything at INFO or the chosen level. Only entry points
call this; library modules just use `logging.getLogger(__name__)`.
"""

from __future__ import annotations

import sys
from pathlib import Path

LEVELS = ("debug", "info", "warning", "error")


def configure_logging(
    *,
    stderr_level: str = "warning",
    log_file: Path | None = None,
    per_server_dir: Path | None = None,
) -> None:
    """stderr at `stderr_level`; `log_file` (0600, rotated) at INFO or finer; with
    `per_server_dir` (the daemon), each line about one server also goes to that server's
    own file there, the file `run --no-daemon` writes for it (see mcp_bridge.server_log)."""
    import logging

    from mcp_bridge.cli.log_files import ServerLogFiles, private_rotating_file

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
            to_file = private_rotating_file(log_file)
        except OSError as exc:
            logging.getLogger(__name__).warning("cannot write the log file %s: %s", log_file, exc)
        else:
            to_file.setLevel(file_level)
            root.addHandler(to_file)
    if per_server_dir is not None:
        per_server = ServerLogFiles(per_server_dir)
        per_server.setLevel(file_level)
        root.addHandler(per_server)
    root.setLevel(file_level if log_file is not None else stderr_numeric)
    # aiohttp logs every access and connection hiccup at INFO; the transport reports
    # what matters itself.
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
