"""The HTTP headers an MCP request carries, by era. Pure: a message in, a header dict out.

2026-07-28 (streamable-http.mdx, "Standard MCP Request Headers") moves routing facts out of
the body into headers so gateways can route without parsing JSON: `MCP-Protocol-Version`,
`Mcp-Method`, `Mcp-Name`, and `Mcp-Param-*` (computed by the bridge from tool schemas).
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from types import MappingProxyType

from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.protocol import (
    HEADER_METHOD,
    HEADER_NAME,
    HEADER_PROTOCOL_VERSION,
    LATEST_MODERN_VERSION,
    META_PROTOCOL_VERSION,
    NAME_PARAM_OF_METHOD,
)

# Both content types, always: a server picks JSON or SSE per response (Streamable HTTP MUST,
# legacy too).
ACCEPT_BOTH = "application/json, text/event-stream"
ACCEPT_SSE = "text/event-stream"
JSON_BODY: Mapping[str, str] = MappingProxyType({"Content-Type": "application/json"})

# What aiohttp refuses in a header value (RFC 9110 §5.5: no CTLs but HTAB); it raises
# ValueError at send time, so a value from a peer is checked before it becomes a header.
_FORBIDDEN_IN_HEADER = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_BASE64_SENTINEL = re.compile(r"=\?base64\?.*\?=", re.IGNORECASE | re.DOTALL)


def encode_header_value(value: str) -> str:
    """A header value that survives HTTP unchanged: `value` itself when it is plain visible
    ASCII, else `=?base64?<base64 of its UTF-8>?=`.

    MCP 2026-07-28, Streamable HTTP: base64 is required for non-ASCII, control characters and
    leading or trailing whitespace (which HTTP strips), and for a literal value that already
    looks like the sentinel, so the receiver never decodes something that was not encoded.
    """
    # For ASCII, isprintable() is exactly the visible characters and the space.
    is_plain = (
        value.isascii()
        and value.isprintable()
        and value == value.strip(" ")
        and not (value.startswith("=?") and _BASE64_SENTINEL.fullmatch(value))
    )
    if is_plain:
        return value
    return f"=?base64?{base64.b64encode(value.encode('utf-8')).decode('ascii')}?="


def is_header_safe(value: str) -> bool:
    """Whether `value` can go in a header as is (no CR, LF, NUL or other control)."""
    return _FORBIDDEN_IN_HEADER.search(value) is None


def protocol_version_of(message: JsonObject) -> str:
    """The version a modern request declares in `params._meta` (the header must equal it, MCP
    Streamable HTTP), or the latest modern version when the message carries none (a
    notification)."""
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    version = meta.get(META_PROTOCOL_VERSION) if isinstance(meta, dict) else None
    return version if isinstance(version, str) and version else LATEST_MODERN_VERSION


def modern_request_headers(message: JsonObject) -> dict[str, str]:
    """`MCP-Protocol-Version`, `Mcp-Method` and, for the name-bearing methods, `Mcp-Name` for
    one 2026-07-28 request or notification (MCP 2026-07-28, Streamable HTTP). Every value comes
    from the client's message, so each is encoded: a method with CR LF must not become two
    headers."""
    headers = {HEADER_PROTOCOL_VERSION: encode_header_value(protocol_version_of(message))}
    method = message.get("method")
    if not isinstance(method, str):
        return headers  # a response: 2026-07-28 clients never send one; nothing to route on
    headers[HEADER_METHOD] = encode_header_value(method)
    name_param = NAME_PARAM_OF_METHOD.get(method)
    params = message.get("params")
    if name_param is not None and isinstance(params, dict):
        name = params.get(name_param)
        if isinstance(name, str):
            headers[HEADER_NAME] = encode_header_value(name)
    return headers
