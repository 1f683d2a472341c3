"""Era translation: a stdio client of either era <-> a 2026-07-28 remote.

Pure: no sockets, clocks or logging. Knows JSON-RPC envelopes, not transports or tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mcp_bridge.jsonrpc import JsonObject, RequestId

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RemoteSend:
    """One message for the remote, with the `Mcp-Param-*` headers it needs (spec §1.8).

    The transport adds `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` itself."""

    message: JsonObject
    headers: Mapping[str, str] = field(default=_NO_HEADERS)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What one incoming message makes the bridge do; the caller performs it in this order."""

    to_local: tuple[JsonObject, ...] = ()
    to_remote: tuple[RemoteSend, ...] = ()
    cancel_remote: tuple[RequestId, ...] = ()  # close these requests' HTTP streams (§1.6)
    warnings: tuple[str, ...] = ()  # for the session's log: no payloads, no tokens
