"""A large message on its way to the local client, held once as JSON text and encoded to
UTF-8 piece by piece as it is written.

Encoded whole, a 20 MB tool result is held three times at the peak: parsed, as the text
json.dumps makes (which escapes the big string into a copy, then joins the parts into
another), and as bytes. Here the parts on the way to a large string are encoded one by
one and the string itself in slices, so the text exists once beside the parsed message,
and the bytes a slice at a time: twice the payload at the peak, once the session lets
the parsed message go.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from mcp_bridge import jsonrpc
from mcp_bridge.jsonrpc import JsonObject, RequestId

__all__ = ["LARGE_LINE_CHARS", "SLICE_CHARS", "LargeLine", "encode_line"]

# A message whose JSON text is longer goes out as a LargeLine.
LARGE_LINE_CHARS = 1 << 20
# The slices it is encoded in: each is briefly held three times (sliced, escaped, encoded).
SLICE_CHARS = 1 << 18
# How far the search for a large string looks (nodes, depth): a tool result's text is at
# depth 4 (message, result, content, item, text); messages with more nodes are rarely
# large, and a large one not found here is still sent right, at three times its size.
_SEARCH_NODES = 64
_SEARCH_DEPTH = 6
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class LargeLine:
    """A message's JSON text in parts. `reply_id`: its id when it is a response (the
    engine's front drops the remote's answers to requests it answered itself)."""

    parts: tuple[str, ...]
    reply_id: RequestId | None

    def pieces(self) -> Iterator[bytes]:
        """The UTF-8 bytes, a slice at a time."""
        for part in self.parts:
            yield part.encode("utf-8")

    def text(self) -> str:
        """The whole text (tests and the engine's own scripted client only)."""
        return "".join(self.parts)


def encode_line(message: JsonObject | list[object]) -> bytes | LargeLine:
    """`message` for a channel: jsonrpc.encode's bytes, or a LargeLine when it holds a
    string past LARGE_LINE_CHARS or its text is that long. ValueError for what is not
    JSON (NaN) or not UTF-8 (a lone surrogate), before anything is written."""
    path: set[int] = set()
    if _find_large_string(message, path, [_SEARCH_NODES], 0):
        parts: list[str] = []
        _encode_along(message, path, parts)
        return _large(message, parts)
    text = jsonrpc.encode_text(message)
    if len(text) <= LARGE_LINE_CHARS:
        return text.encode("utf-8")
    size = SLICE_CHARS
    return _large(message, [text[start : start + size] for start in range(0, len(text), size)])


def _large(message: JsonObject | list[object], parts: list[str]) -> LargeLine:
    for part in parts:
        if not part.isascii() and _LONE_SURROGATE.search(part):
            raise ValueError("a lone surrogate cannot be encoded as UTF-8")
    reply_id = message.get("id") if isinstance(message, dict) and "method" not in message else None
    return LargeLine(tuple(parts), reply_id if jsonrpc.is_request_id(reply_id) else None)


def _find_large_string(value: object, path: set[int], budget: list[int], depth: int) -> bool:
    """Whether a large string is within reach; the ids of the containers leading to it
    (to every one found) go into `path`."""
    budget[0] -= 1
    if isinstance(value, str):
        return len(value) > LARGE_LINE_CHARS
    if budget[0] < 0 or depth >= _SEARCH_DEPTH:
        return False
    children: Iterable[object]
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    found = False
    for child in children:
        if _find_large_string(child, path, budget, depth + 1):
            found = True
    if found:
        path.add(id(value))
    return found


def _encode_along(value: object, path: set[int], parts: list[str]) -> None:
    """Append `value`'s JSON to `parts`: containers on `path` member by member, large
    strings in slices, everything else with json.dumps (jsonrpc.encode's settings)."""
    if isinstance(value, str) and len(value) > LARGE_LINE_CHARS:
        parts.append('"')
        for start in range(0, len(value), SLICE_CHARS):
            # Escaping is per character, so slices escape independently.
            piece = value[start : start + SLICE_CHARS]
            parts.append(json.encoder.encode_basestring(piece)[1:-1])
        parts.append('"')
    elif isinstance(value, dict) and id(value) in path:
        parts.append("{")
        for index, (key, member) in enumerate(value.items()):
            # Keys parsed from JSON are strings; json.dumps would turn others into strings.
            name = key if isinstance(key, str) else jsonrpc.encode_text(key).strip('"')
            parts.append(("," if index else "") + jsonrpc.encode_text(name) + ":")
            _encode_along(member, path, parts)
        parts.append("}")
    elif isinstance(value, list) and id(value) in path:
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _encode_along(item, path, parts)
        parts.append("]")
    else:
        parts.append(jsonrpc.encode_text(value))
