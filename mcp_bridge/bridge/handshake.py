"""The legacy `initialize` handshake, answered from a 2026-07-28 `server/discover` result.

A modern remote has no handshake (MCP 2026-07-28, Server Discovery): what a legacy client learns
from `initialize` comes from the discover result the bridge already holds, and what the legacy
client declares in `initialize` travels in every later request's `_meta` instead. Pure: dicts
in, dicts out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp_bridge.errors import RemoteError
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.protocol import (
    HANDSHAKE_VERSIONS,
    LATEST_HANDSHAKE_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_LOG_LEVEL,
    META_PROTOCOL_VERSION,
    META_SERVER_INFO,
    MODERN_VERSIONS,
)


@dataclass(frozen=True, slots=True)
class LocalClient:
    """What a legacy client declared in `initialize`."""

    capabilities: JsonObject  # as declared (legacy shape)
    client_info: JsonObject | None
    protocol_version: str  # the handshake version the bridge answered with

    @classmethod
    def from_initialize(cls, params: object) -> LocalClient:
        params = params if isinstance(params, dict) else {}
        capabilities = params.get("capabilities")
        client_info = params.get("clientInfo")
        return cls(
            capabilities=capabilities if isinstance(capabilities, dict) else {},
            client_info=client_info if isinstance(client_info, dict) else None,
            protocol_version=handshake_version_for(params.get("protocolVersion")),
        )


def modern_version_of(discover_result: JsonObject, url: str = "the remote server") -> str:
    """The newest 2026-era version both the remote (`supportedVersions`) and we speak.

    Raises RemoteError when there is none: the remote is not one this translator serves."""
    supported = discover_result.get("supportedVersions")
    offered = supported if isinstance(supported, list) else []
    for version in MODERN_VERSIONS:  # ours, newest first
        if version in offered:
            return version
    raise RemoteError(
        f"{url} supports protocol versions {offered!r}, none of which this mcp-bridge speaks "
        f"({', '.join(MODERN_VERSIONS)})",
        next_step="Update mcp-bridge, or ask the server's owner which versions it serves",
    )


def handshake_version_for(requested: object) -> str:
    """Echo the client's version when it is a handshake version we know (Claude Desktop and
    older Zed disconnect when the answer names another version, docs/desktop-hosts.md);
    otherwise offer the latest handshake version (2025-11-25 Lifecycle)."""
    if isinstance(requested, str) and requested in HANDSHAKE_VERSIONS:
        return requested
    return LATEST_HANDSHAKE_VERSION


def initialize_result(
    discover_result: JsonObject, protocol_version: str, *, bridge_info: JsonObject
) -> JsonObject:
    """The InitializeResult a legacy client gets: the remote's capabilities, identity and
    instructions. `listChanged` and `subscribe` stay: the bridge serves them through
    `subscriptions/listen` (listen.py)."""
    capabilities = discover_result.get("capabilities")
    meta = discover_result.get("_meta")
    server_info = meta.get(META_SERVER_INFO) if isinstance(meta, dict) else None
    result: JsonObject = {
        "protocolVersion": protocol_version,
        "capabilities": capabilities if isinstance(capabilities, dict) else {},
        # Servers SHOULD send serverInfo; without it the client still needs a name to show.
        "serverInfo": server_info if _is_implementation(server_info) else bridge_info,
    }
    instructions = discover_result.get("instructions")
    if isinstance(instructions, str):
        result["instructions"] = instructions
    return result


def discover_result_for_local(discover_result: JsonObject) -> JsonObject:
    """The discover result a stdio client gets from the bridge: the remote's, with the
    handshake versions added, because the bridge also accepts `initialize`: Claude Code and
    Copilot CLI send one after a successful discover (docs/desktop-hosts.md)."""
    supported = discover_result.get("supportedVersions")
    modern = [v for v in supported if v in MODERN_VERSIONS] if isinstance(supported, list) else []
    return {**discover_result, "supportedVersions": [*modern, *HANDSHAKE_VERSIONS]}


def modern_client_capabilities(legacy: JsonObject) -> JsonObject:
    """The `clientCapabilities` to declare upstream for a legacy client: only what it can do
    through the bridge (declare only what the local client can really do).

    - elicitation, sampling, roots: the bridge turns the remote's MRTR input requests into
      these legacy requests (mrtr.py), so the client's own declaration holds, minus
      `roots.listChanged` (its notification no longer exists upstream in 2026-07-28).
    - extensions: client-side features that need no translation (MCP Apps renders
      resources the client reads itself).
    - tasks (2025-11-25 only) and experimental: nothing carries them across eras, so a
      server relying on them would wait for something that never comes.
    """
    declared: JsonObject = {}
    for name in ("elicitation", "sampling", "extensions"):
        value = legacy.get(name)
        if isinstance(value, dict):
            declared[name] = value
    roots = legacy.get("roots")
    if isinstance(roots, dict):
        declared["roots"] = {k: v for k, v in roots.items() if k != "listChanged"}
    return declared


def with_request_meta(
    params: object,
    *,
    version: str,
    capabilities: JsonObject,
    client_info: JsonObject,
    log_level: str | None,
) -> JsonObject:
    """`params` with the 2026-07-28 per-request `_meta` merged in (2026-07-28 Overview, _meta),
    for a legacy client that declared `capabilities` (legacy shape) and `client_info` in
    `initialize`.

    The client's own `_meta` keys stay (progressToken, trace context); ours win on a clash,
    because the remote checks the version against the header derived from it (Streamable
    HTTP)."""
    params = dict(params) if isinstance(params, dict) else {}
    meta = params.get("_meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta[META_PROTOCOL_VERSION] = version
    meta[META_CLIENT_CAPABILITIES] = modern_client_capabilities(capabilities)
    meta[META_CLIENT_INFO] = client_info
    if log_level is not None:
        # Logging (2026-07-28): opts this request into notifications/message
        meta[META_LOG_LEVEL] = log_level
    params["_meta"] = meta
    return params


def _is_implementation(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("name"), str)
