"""What a legacy (2025-03-26 .. 2025-11-25) Streamable HTTP session remembers. Pure.

The transport watches the client's handshake go by: it records the `initialize` request and
the `notifications/initialized` that followed, so that when the server forgets the session
(HTTP 404 on a request that carried its id, 2025-11-25 transports §Session Management) the
transport can replay both and carry on without the client noticing.
"""

from __future__ import annotations

from dataclasses import dataclass

from mcp_bridge.jsonrpc import JsonObject, RequestId
from mcp_bridge.protocol import HEADER_PROTOCOL_VERSION, HEADER_SESSION_ID
from mcp_bridge.remote.headers import is_header_safe

INITIALIZE = "initialize"
INITIALIZED = "notifications/initialized"


@dataclass(slots=True)
class LegacySession:
    session_id: str | None = None
    # From the initialize RESULT (the server's choice), not the client's offer.
    protocol_version: str | None = None
    initialize: JsonObject | None = None
    initialized: JsonObject | None = None

    @property
    def initialize_id(self) -> RequestId | None:
        return None if self.initialize is None else self.initialize.get("id")

    def saw_client_message(self, message: JsonObject) -> None:
        """Record the client's handshake messages as they go out."""
        method = message.get("method")
        if method == INITIALIZE and "id" in message:
            # A new handshake starts a new session: the old id and version no longer apply.
            self.initialize, self.initialized = message, None
            self.session_id = self.protocol_version = None
        elif method == INITIALIZED:
            self.initialized = message

    def saw_initialize_response(self, message: JsonObject) -> bool:
        """Record the negotiated version when `message` answers our initialize; True if it did."""
        if self.initialize is None or message.get("id") != self.initialize_id:
            return False
        if "method" in message:
            return False  # a server-to-client request that happens to reuse the id
        result = message.get("result")
        version = result.get("protocolVersion") if isinstance(result, dict) else None
        # It goes back in a header on every request: a version with CR LF or NUL (no real
        # server's) is left out rather than fail them all; the server then assumes its default.
        if isinstance(version, str) and is_header_safe(version):
            self.protocol_version = version
        return True

    def headers(self, message: JsonObject | None) -> dict[str, str]:
        """Session id and negotiated version for a request after initialize; none for the
        initialize itself (it must open a fresh session)."""
        if message is not None and message.get("method") == INITIALIZE:
            return {}
        headers: dict[str, str] = {}
        if self.session_id is not None:
            headers[HEADER_SESSION_ID] = self.session_id
        if self.protocol_version is not None:
            # 2025-06-18 §Protocol Version Header: on every request after initialization.
            headers[HEADER_PROTOCOL_VERSION] = self.protocol_version
        return headers
