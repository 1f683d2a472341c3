"""What a translator hands back to the session for each message: the sends to perform.

Pure data, shared by every translator (era.py and the session's passthrough).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from mcp_bridge.jsonrpc import JsonObject, RequestId

NO_HEADERS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class RemoteSend:
    """One message for the remote, with the `Mcp-Param-*` headers it needs (Streamable HTTP,
    x-mcp-header).

    The transport adds `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name` itself."""

    message: JsonObject
    headers: Mapping[str, str] = field(default_factory=lambda: NO_HEADERS)


@dataclass(frozen=True, slots=True)
class Outgoing:
    """What one incoming message makes the bridge do; the caller performs it in this order."""

    to_local: tuple[JsonObject, ...] = ()
    to_remote: tuple[RemoteSend, ...] = ()
    cancel_remote: tuple[RequestId, ...] = ()  # close these requests' HTTP streams (Cancellation)
    warnings: tuple[str, ...] = ()  # for the session's log: no payloads, no tokens


@dataclass(slots=True)
class Effects:
    """An Outgoing under construction, appended to while one message is handled."""

    to_local: list[JsonObject] = field(default_factory=list)
    to_remote: list[RemoteSend] = field(default_factory=list)
    cancel_remote: list[RequestId] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def done(self) -> Outgoing:
        return Outgoing(
            tuple(self.to_local),
            tuple(self.to_remote),
            tuple(self.cancel_remote),
            tuple(self.warnings),
        )
