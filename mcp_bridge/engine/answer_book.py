"""AnswerBook: one server's cached answers as the engine uses them: shared by every session
of the server in this process, written through to the AnswerCache file, and telling the
sessions that answered `tools/list` from it when the remote's tool list has changed.

Knows keys and results; not channels, sockets or the remote.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from mcp_bridge.engine.answer_cache import AnswerCache, is_cacheable_result
from mcp_bridge.jsonrpc import JsonObject

__all__ = ["RECHECK_INTERVAL_S", "AnswerBook", "ToolsChanged"]

log = logging.getLogger(__name__)

# A server's cached answers are checked against the remote at most this often (each check
# is one connection and a few requests, made only after a client was answered from them).
RECHECK_INTERVAL_S = 60.0

ToolsChanged = Callable[[], None]


class AnswerBook:
    def __init__(self, cache_dir: Path, resource: str) -> None:
        self._cache = AnswerCache.load(cache_dir, resource)
        self._watchers: set[ToolsChanged] = set()
        self._last_recheck_at: float | None = None

    def get(self, key: str) -> JsonObject | None:
        return self._cache.get(key)

    def record(self, key: str, result: object) -> None:
        """The remote answered `key` with `result`: keep it, and when a tool list changed,
        tell the sessions watching (they send `notifications/tools/list_changed`)."""
        if not is_cacheable_result(key, result):
            return
        assert isinstance(result, dict)
        before = self._cache.get(key)
        if not self._cache.put(key, result):
            return
        if before is None or not key.startswith("tools/list@"):
            return
        if before.get("tools") != result.get("tools"):
            log.info("%s: the tool list changed", self._cache.resource)
            for watcher in list(self._watchers):
                watcher()

    def watch_tools(self, watcher: ToolsChanged) -> None:
        self._watchers.add(watcher)

    def unwatch_tools(self, watcher: ToolsChanged) -> None:
        self._watchers.discard(watcher)

    def is_recheck_due(self) -> bool:
        """True at most once per RECHECK_INTERVAL_S (the caller then checks)."""
        now = time.monotonic()
        if self._last_recheck_at is not None and now - self._last_recheck_at < RECHECK_INTERVAL_S:
            return False
        self._last_recheck_at = now
        return True
