"""MCP protocol vocabulary the bridge needs: versions, eras, `_meta` keys, header names.

Kept here rather than imported from `mcp_types` because importing any part of the SDK costs
~0.2-0.6 s at start-up, and hosts probe a stdio server with a deadline of ~150 ms.
"""

from __future__ import annotations

import enum

MODERN_VERSIONS: tuple[str, ...] = ("2026-07-28",)
HANDSHAKE_VERSIONS: tuple[str, ...] = ("2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05")
LATEST_MODERN_VERSION = MODERN_VERSIONS[0]
LATEST_HANDSHAKE_VERSION = HANDSHAKE_VERSIONS[0]
# What a server assumes when a legacy request carries no MCP-Protocol-Version header.
DEFAULT_NEGOTIATED_VERSION = "2025-03-26"

META_PROTOCOL_VERSION = "io.modelcontextprotocol/protocolVersion"
META_CLIENT_CAPABILITIES = "io.modelcontextprotocol/clientCapabilities"
META_CLIENT_INFO = "io.modelcontextprotocol/clientInfo"
META_LOG_LEVEL = "io.modelcontextprotocol/logLevel"
META_SERVER_INFO = "io.modelcontextprotocol/serverInfo"
META_SUBSCRIPTION_ID = "io.modelcontextprotocol/subscriptionId"

HEADER_PROTOCOL_VERSION = "MCP-Protocol-Version"
HEADER_SESSION_ID = "Mcp-Session-Id"
HEADER_METHOD = "Mcp-Method"
HEADER_NAME = "Mcp-Name"
HEADER_PARAM_PREFIX = "Mcp-Param-"

# The bridge's own member of a JSON-RPC error's `data`: the URL of a sign-in the request
# waited for. A 2025-11-25 client that declared URL elicitation gets it as error -32042.
SIGN_IN_URL_DATA = "signInUrl"
URL_ELICITATION_REQUIRED = -32042
URL_ELICITATION_VERSIONS = ("2025-11-25",)  # -32042 is not in 2026-07-28

# 2026-07-28 §subscriptions: a request whose SSE answer stays open, idle, until the client
# closes it; it must not be read under a silence timeout.
SUBSCRIPTIONS_LISTEN = "subscriptions/listen"

# Methods whose Mcp-Name header comes from a parameter (2026-07-28 streamable-http).
NAME_PARAM_OF_METHOD: dict[str, str] = {
    "tools/call": "name",
    "prompts/get": "name",
    "resources/read": "uri",
}


class Era(enum.Enum):
    """Which generation of the protocol a peer speaks."""

    LEGACY = "legacy"  # `initialize` handshake, 2024-11-05 ... 2025-11-25
    MODERN = "modern"  # per-request `_meta`, no handshake, 2026-07-28 and later


class TransportKind(enum.Enum):
    """How the bridge reaches the remote server (`--transport`)."""

    AUTO = "auto"
    STREAMABLE_HTTP = "streamable-http"
    SSE = "sse"  # HTTP+SSE, 2024-11-05
