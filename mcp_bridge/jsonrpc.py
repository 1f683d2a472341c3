"""JSON-RPC 2.0 envelopes, as the bridge sees them.

The bridge forwards messages, it does not model them: a message stays the dict that
`json.loads` made of it, unknown fields and all, and only the envelope (id, method, the
result or error) is looked at. Ids keep their JSON type. Pure: no I/O.
"""

from __future__ import annotations

import enum
import json
from typing import Any, TypeAlias

# A decoded JSON object. `Any` at this seam: values are whatever the peer sent.
JsonObject: TypeAlias = dict[str, Any]
RequestId: TypeAlias = str | int

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# -32000..-32019 are for implementations; -32020..-32099 are reserved for MCP itself.
REMOTE_UNAVAILABLE = -32000
REQUEST_TIMEOUT = -32001
HEADER_MISMATCH = -32020
MISSING_REQUIRED_CLIENT_CAPABILITY = -32021
UNSUPPORTED_PROTOCOL_VERSION = -32022
MODERN_ERROR_CODES = frozenset(
    {HEADER_MISMATCH, MISSING_REQUIRED_CLIENT_CAPABILITY, UNSUPPORTED_PROTOCOL_VERSION}
)


class Kind(enum.Enum):
    REQUEST = "request"  # method and id: expects an answer
    NOTIFICATION = "notification"  # method, no id
    RESPONSE = "response"  # id and result or error


class InvalidMessage(ValueError):
    """The input is JSON but not a JSON-RPC 2.0 message; `code` is the JSON-RPC error code."""

    def __init__(
        self, reason: str, *, code: int = INVALID_REQUEST, request_id: RequestId | None = None
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.request_id = request_id


def kind_of(message: JsonObject) -> Kind:
    """Classify a decoded message, or raise InvalidMessage saying what is wrong with it."""
    if message.get("jsonrpc") != "2.0":
        raise InvalidMessage('"jsonrpc" must be "2.0"', request_id=_usable_id(message))
    if "method" in message:
        if not isinstance(message["method"], str):
            raise InvalidMessage('"method" must be a string', request_id=_usable_id(message))
        if "id" not in message:
            return Kind.NOTIFICATION
        if not is_request_id(message["id"]):
            raise InvalidMessage('"id" must be a string or an integer')
        return Kind.REQUEST
    if "id" in message and ("result" in message or "error" in message):
        return Kind.RESPONSE
    raise InvalidMessage(
        "a message needs a method (request or notification) or a result or error (response)",
        request_id=_usable_id(message),
    )


def decode(data: bytes | str) -> JsonObject | list[Any]:
    """Decode one line of JSON-RPC: an object, or a batch (a list) from an old peer.

    Raises InvalidMessage with code -32700 for input that is not UTF-8 JSON, and -32600
    for JSON that is neither an object nor a non-empty list.
    """
    try:
        value = json.loads(data)
    except UnicodeDecodeError as exc:
        raise InvalidMessage("the line is not valid UTF-8", code=PARSE_ERROR) from exc
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidMessage(f"the line is not valid JSON ({exc})", code=PARSE_ERROR) from exc
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and value:
        return value
    raise InvalidMessage("a JSON-RPC message must be an object or a non-empty batch")


def encode(message: JsonObject | list[Any]) -> bytes:
    """Compact UTF-8 JSON with no newline inside (stdio framing forbids embedded newlines)."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )


def error_response(
    request_id: RequestId | None, code: int, message: str, data: object = None
) -> JsonObject:
    error: JsonObject = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return {"jsonrpc": "2.0", "id": request_id, "error": error}


def result_response(request_id: RequestId, result: JsonObject) -> JsonObject:
    return {"jsonrpc": "2.0", "id": request_id, "result": result}


def request(request_id: RequestId, method: str, params: JsonObject | None = None) -> JsonObject:
    message: JsonObject = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        message["params"] = params
    return message


def notification(method: str, params: JsonObject | None = None) -> JsonObject:
    message: JsonObject = {"jsonrpc": "2.0", "method": method}
    if params is not None:
        message["params"] = params
    return message


def is_request_id(value: object) -> bool:
    """A JSON-RPC id as MCP allows it: a string or an integer (not a bool, not null)."""
    # bool is an int subclass in Python, but `true` is not a valid JSON-RPC id.
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _usable_id(message: JsonObject) -> RequestId | None:
    value = message.get("id")
    return value if is_request_id(value) else None
