"""Which era and transport an HTTP MCP endpoint speaks, decided from its answers to probes.

Pure: the async driver (detect.py) sends the probes and hands the answers here. The
procedure is the spec's (2026-07-28 versioning.mdx and streamable-http.mdx §Backward
Compatibility), which leaves the order of its two fallbacks open; ours: `server/discover` at
2026-07-28, then the client's own `initialize` over legacy Streamable HTTP, then a GET for an
HTTP+SSE `endpoint`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from mcp_bridge import jsonrpc
from mcp_bridge.jsonrpc import JsonObject, RequestId
from mcp_bridge.protocol import (
    HANDSHAKE_VERSIONS,
    LATEST_MODERN_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
)

DISCOVER_ID = "mcp-bridge-discover"
BRIDGE_CLIENT_INFO: JsonObject = {"name": "mcp-bridge", "version": "0.1.0"}


class ProbeVerdict(enum.Enum):
    MODERN = "modern"  # a DiscoverResult, or a recognised 2026-07-28 error: stay modern
    LEGACY_STREAMABLE = "legacy-streamable"  # fall back to `initialize` over Streamable HTTP
    TRY_SSE = "try-sse"  # the endpoint takes no such POST: look for HTTP+SSE with a GET
    ERROR = "error"  # no era verdict: auth refused, server error, nonsense


@dataclass(frozen=True, slots=True)
class ProbeAnswer:
    """An HTTP answer to one probe POST: its status and the JSON-RPC messages in its body."""

    request_id: RequestId
    status: int
    messages: tuple[JsonObject, ...] = ()

    @property
    def response(self) -> JsonObject | None:
        """The JSON-RPC response to the probe: by id, or an id-less error (servers that could
        not read the id answer with `id: null`)."""
        for message in self.messages:
            if "method" not in message and message.get("id") in (self.request_id, None):
                return message
        return None

    @property
    def error_code(self) -> int | None:
        response = self.response
        error = response.get("error") if response is not None else None
        code = error.get("code") if isinstance(error, dict) else None
        return code if isinstance(code, int) and not isinstance(code, bool) else None

    @property
    def result(self) -> JsonObject | None:
        response = self.response
        result = response.get("result") if response is not None else None
        return result if isinstance(result, dict) else None

    @property
    def is_modern_error(self) -> bool:
        return self.error_code in jsonrpc.MODERN_ERROR_CODES


def discover_request(initialize: JsonObject | None) -> JsonObject:
    """A `server/discover` probe with the full 2026-07-28 `_meta` (MCP 2026-07-28 Versioning,
    backward compatibility), carrying the local client's capabilities and identity when it
    opened with `initialize`."""
    params = initialize.get("params") if initialize is not None else None
    params = params if isinstance(params, dict) else {}
    capabilities = params.get("capabilities")
    client_info = params.get("clientInfo")
    meta: JsonObject = {
        META_PROTOCOL_VERSION: LATEST_MODERN_VERSION,
        META_CLIENT_CAPABILITIES: capabilities if isinstance(capabilities, dict) else {},
        META_CLIENT_INFO: client_info if isinstance(client_info, dict) else BRIDGE_CLIENT_INFO,
    }
    return jsonrpc.request(DISCOVER_ID, "server/discover", {"_meta": meta})


def classify_discover(answer: ProbeAnswer) -> ProbeVerdict:
    """The verdict on a `server/discover` POST (MCP 2026-07-28 Versioning and Streamable HTTP,
    backward compatibility)."""
    if answer.status in (401, 403):
        return ProbeVerdict.ERROR  # the credential provider already had its one retry
    if answer.error_code == jsonrpc.UNSUPPORTED_PROTOCOL_VERSION and _offers_only_handshake(answer):
        # A dual-era server that does not speak our modern version but lists legacy ones:
        # the handshake era is common ground (the SDK's own client decides the same way).
        return ProbeVerdict.LEGACY_STREAMABLE
    if answer.is_modern_error:
        return ProbeVerdict.MODERN  # -32020/-32021/-32022: modern, and never fall back
    if answer.status >= 500:
        return ProbeVerdict.ERROR
    result = answer.result
    if 200 <= answer.status < 300 and result is not None and "supportedVersions" in result:
        return ProbeVerdict.MODERN
    if answer.status in (404, 405):
        # No POST endpoint here at all (a legacy Streamable HTTP server answers 400 or a
        # JSON-RPC error): the URL may be an HTTP+SSE stream.
        return ProbeVerdict.TRY_SSE
    # 400, a 200 with -32601 from a stateless legacy server, a 404 + -32601 (contradictory
    # for a modern server, which must implement discover): legacy (a case the spec leaves open).
    return ProbeVerdict.LEGACY_STREAMABLE


def classify_initialize(answer: ProbeAnswer) -> ProbeVerdict:
    """The verdict on the client's `initialize` POSTed as a legacy Streamable HTTP request."""
    if answer.status in (401, 403) or answer.status >= 500:
        return ProbeVerdict.ERROR
    if answer.error_code == jsonrpc.UNSUPPORTED_PROTOCOL_VERSION:
        return ProbeVerdict.MODERN  # a modern-only server naming its versions
    if 200 <= answer.status < 300 and answer.response is not None:
        return ProbeVerdict.LEGACY_STREAMABLE  # a result, or the server's own error: deliver it
    if answer.status in (400, 404, 405):
        return ProbeVerdict.TRY_SSE  # Streamable HTTP, backward compatibility: 400/404/405
    return ProbeVerdict.ERROR


def supported_versions(answer: ProbeAnswer) -> list[str]:
    """`error.data.supported` of a -32022 answer (the versions the server speaks)."""
    response = answer.response
    error = response.get("error") if response is not None else None
    data = error.get("data") if isinstance(error, dict) else None
    supported = data.get("supported") if isinstance(data, dict) else None
    return [v for v in supported if isinstance(v, str)] if isinstance(supported, list) else []


def _offers_only_handshake(answer: ProbeAnswer) -> bool:
    supported = supported_versions(answer)
    return bool(supported) and all(v in HANDSHAKE_VERSIONS for v in supported)
