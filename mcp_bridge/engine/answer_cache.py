"""The remote's last answers to what hosts ask first, kept on disk per server, so that
`initialize`, `server/discover` and `tools/list` are answered in milliseconds, even while
the remote is slow, down, or waiting for a login.

Standard library only: the shim reads these files before it has reached the daemon.
Nothing secret is kept: server capabilities, instructions and tool lists, as the client
saw them. The daemon (or a `--no-daemon` process) writes them as answers pass by.

A key is the method and the protocol version the answer was given for:
`initialize@2025-11-25`, `tools/list@2026-07-28`, `server/discover@`. An answer depends on
the version (a 2026-07-28 result carries fields a 2025 one does not), not on the id.
"""

from __future__ import annotations

import contextlib
import json
import zlib
from pathlib import Path

from mcp_bridge.protocol import META_PROTOCOL_VERSION

__all__ = [
    "CACHEABLE_METHODS",
    "AnswerCache",
    "answer_key",
    "cache_file",
    "is_cacheable_result",
]

CACHEABLE_METHODS = frozenset({"initialize", "server/discover", "tools/list"})
_FORMAT = 1
_MAX_FILE_BYTES = 8 * 1024 * 1024  # a tool list larger than this is not worth a cache


def cache_file(cache_dir: Path, resource: str) -> Path:
    """Where the answers of the server whose canonical resource URI is `resource` live.
    Two checksums, not a cryptographic hash: hashlib would load OpenSSL into the shim
    (~4 MB, ~2 ms), and a collision costs nothing, since the file names its resource and
    a foreign one reads as empty."""
    raw = resource.encode("utf-8")
    return cache_dir / f"{zlib.crc32(raw):08x}{zlib.adler32(raw):08x}.json"


def answer_key(message: dict[str, object], handshake_version: str | None) -> str | None:
    """The cache key of a request's answer, or None when its answer is not cached: other
    methods, and tools/list pages after the first (a cursor is only good for a while).
    `handshake_version`: the version the client asked for in its `initialize`, which
    applies to its later requests that carry no version of their own."""
    method = message.get("method")
    if not isinstance(method, str) or method not in CACHEABLE_METHODS:
        return None  # not a string: the session refuses it (and a list is unhashable)
    params = message.get("params")
    params = params if isinstance(params, dict) else {}
    if method == "initialize":
        version = params.get("protocolVersion")
    elif method == "server/discover":
        version = ""
    else:
        if params.get("cursor") is not None:
            return None
        meta = params.get("_meta")
        version = meta.get(META_PROTOCOL_VERSION) if isinstance(meta, dict) else None
        version = version or handshake_version
    if not isinstance(version, str):
        return None
    return f"{method}@{version}"


def is_cacheable_result(key: str, result: object) -> bool:
    """A result worth keeping: an object, and for tools/list a whole list (no next page)."""
    if not isinstance(result, dict):
        return False
    return not (key.startswith("tools/list@") and result.get("nextCursor") is not None)


class AnswerCache:
    """One server's answers, read from and written to its file. A damaged or foreign file
    reads as empty: the answers come from the remote again and replace it."""

    def __init__(self, path: Path, resource: str) -> None:
        self.path = path
        self.resource = resource
        self._answers: dict[str, dict[str, object]] = {}

    @classmethod
    def load(cls, cache_dir: Path, resource: str) -> AnswerCache:
        cache = cls(cache_file(cache_dir, resource), resource)
        cache._answers = cache._read()
        return cache

    def get(self, key: str) -> dict[str, object] | None:
        return self._answers.get(key)

    def put(self, key: str, result: dict[str, object]) -> bool:
        """Keep `result` for `key` and write the file; True when it differs from before."""
        if self._answers.get(key) == result:
            return False
        self._answers[key] = result
        self._write()
        return True

    def _read(self) -> dict[str, dict[str, object]]:
        try:
            with open(self.path, "rb") as file:
                raw = file.read(_MAX_FILE_BYTES + 1)
            doc = json.loads(raw)
        except (OSError, ValueError, RecursionError):
            return {}
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            return {}
        answers = doc.get("answers")
        if doc.get("resource") != self.resource or not isinstance(answers, dict):
            return {}
        return {k: v for k, v in answers.items() if isinstance(k, str) and isinstance(v, dict)}

    def _write(self) -> None:
        data = json.dumps(
            {"format": _FORMAT, "resource": self.resource, "answers": self._answers},
            separators=(",", ":"),
            allow_nan=False,
        ).encode("utf-8")
        if len(data) > _MAX_FILE_BYTES:
            return
        from mcp_bridge.atomic_file import write_atomically  # the writer's side only

        # Readers see the old file or the new, whole. A full disk or a read-only home:
        # the bridge works on without its cache.
        with contextlib.suppress(OSError):
            write_atomically(self.path, data)
