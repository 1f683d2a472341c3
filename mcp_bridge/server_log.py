"""Which server a log line is about, so each server gets a log file of its own.

`run --no-daemon` serves one server per process and simply writes that server's file. The
daemon serves every server in one process: the engine marks the work it does for a server
with `serving(url)`, and asyncio copies that mark into every task started under it (a
session's transport, its refresh timer, its login), so the daemon's log handler can send
each line to the right file without threading a name through every call. Lines with no
server (the daemon's own) stay in daemon.log only. `mcp-bridge logs NAME` reads the same
file in both modes.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextvars import ContextVar

__all__ = ["current_server_log", "log_name_for", "serving"]

_current: ContextVar[str | None] = ContextVar("mcp_bridge_server_log", default=None)


def log_name_for(url_or_name: str) -> str:
    """A file-name-safe label for a server: `https://mcp.example.com/v1/mcp` ->
    `mcp.example.com-v1-mcp`."""
    label = re.sub(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", "", url_or_name)
    label = re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-.")
    return label[:80] or "server"


def current_server_log() -> str | None:
    """The log name of the server the running code works for, if any."""
    return _current.get()


@contextlib.contextmanager
def serving(url: str) -> Iterator[None]:
    """Mark the code in the block, and every task it starts, as work for `url`'s server."""
    token = _current.set(log_name_for(url))
    try:
        yield
    finally:
        _current.reset(token)
