"""JSON-RPC 2.0 envelopes, as the bridge sees them.

The bridge forwards messages, it does not model them: a message stays the dict that
`json.loads` made of it, unknown fields and all, and only the envelope (id, method, the
result or error) is looked at. Ids keep their JSON type. Pure: no I/O.
"""

from __future__ import annotations

import enum
import json
import math
import re
import sys
from typing import Any, NoReturn, TypeAlias

# A decoded JSON object. `Any` at this seam: values are whatever the peer sent.
JsonObject: TypeAlias = dict[str, Any]
RequestId: TypeAlias = str | int

# json.loads nests as deep as the recursion limit allows (~1000); `encode`, called deeper in
# the stack, may not get as far. Decode refuses deeper lines so that all it returns encodes;
# no MCP message comes close.
MAX_DEPTH = 256

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

    Raises InvalidMessage with code -32700 for input that is not UTF-8 JSON or holds what
    `encode` could not write back (NaN, Infinity, a float that overflows, an integer past
    CPython's int-string limit, a lone surrogate), and -32600 for JSON that is neither an
    object nor a non-empty list. Nothing else escapes: a stdin line must never end the bridge.
    """
    try:
        # A str holding a lone surrogate fails here: it has no UTF-8 form to send on.
        raw = data.encode("utf-8") if isinstance(data, str) else data
        # Strict UTF-8 (a BOM tolerated) rather than json.loads on bytes, which would guess
        # UTF-16 or UTF-32 and let UTF-8-encoded surrogates through (it decodes surrogatepass).
        text = raw.decode("utf-8-sig")
    except UnicodeError as exc:
        raise InvalidMessage("the line is not valid UTF-8", code=PARSE_ERROR) from exc
    return decode_text(text)


def decode_text(text: str, subject: str = "the line") -> JsonObject | list[Any]:
    """`decode` for text already decoded from UTF-8 (so it holds no raw surrogate), such as
    a remote's body or SSE event. The same refusals, each reason starting with `subject`."""
    try:
        value = _parse(text)
    except InvalidMessage as exc:
        raise InvalidMessage(f"{subject} {exc}", code=exc.code) from exc
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and value:
        return value
    raise InvalidMessage("a JSON-RPC message must be an object or a non-empty batch")


def _parse(text: str) -> object:
    """Any JSON value that `encode` can write back; else InvalidMessage(-32700) whose reason
    the caller prefixes with what it parsed ("the line", "the body")."""
    try:
        value = _DECODER.decode(text)
    except InvalidMessage:
        raise
    except (json.JSONDecodeError, RecursionError) as exc:
        raise InvalidMessage(f"is not valid JSON ({exc})", code=PARSE_ERROR) from exc
    except ValueError as exc:  # a limit inside json or int() this module does not foresee
        raise InvalidMessage(f"cannot be decoded ({exc})", code=PARSE_ERROR) from exc
    # Nesting can only pass MAX_DEPTH if the text has that many brackets (counted in C).
    if text.count("[") + text.count("{") > MAX_DEPTH and _depth_over_max(value):
        raise InvalidMessage(
            f"nests arrays and objects more than {MAX_DEPTH} deep", code=PARSE_ERROR
        )
    # After the depth check: it encodes the whole value. A scalar is refused by the caller.
    if isinstance(value, dict | list) and _SURROGATE_ESCAPE.search(text):
        _refuse_lone_surrogates(value)
    return value


def _refuse_constant(name: str) -> NoReturn:
    raise InvalidMessage(f"holds {name}, which is not JSON", code=PARSE_ERROR)


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):  # 1e400: valid JSON, but json.dumps would write Infinity back
        raise InvalidMessage(
            f"holds a number too large for a double ({literal[:24]})",
            code=PARSE_ERROR,
        )
    return value


def _bounded_int(literal: str) -> int:
    try:
        return int(literal)
    except ValueError as exc:  # CPython's int-string conversion limit (4300 digits)
        raise InvalidMessage(
            f"holds an integer of {len(literal.lstrip('-'))} digits; "
            f"the limit is {sys.get_int_max_str_digits()}",
            code=PARSE_ERROR,
        ) from exc


def _refuse_lone_surrogates(value: JsonObject | list[Any]) -> None:
    """A lone surrogate (an unpaired \\ud800 escape) is not Unicode: `encode` could not
    write it as UTF-8. Only run when the text can hold one: it costs a whole encode."""
    try:
        encode(value)
    except UnicodeEncodeError as exc:
        raise InvalidMessage(
            "holds a lone UTF-16 surrogate (\\ud800-\\udfff without its pair), "
            "which is not Unicode text",
            code=PARSE_ERROR,
        ) from exc


def _depth_over_max(value: object) -> bool:
    """Walked with a list, not recursion: the point is to stay clear of the recursion limit."""
    pending: list[tuple[JsonObject | list[Any], int]] = []
    if isinstance(value, dict | list):
        pending.append((value, 1))
    while pending:
        item, depth = pending.pop()
        if depth > MAX_DEPTH:
            return True
        children = item.values() if isinstance(item, dict) else item
        pending.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


_DECODER = json.JSONDecoder(
    parse_constant=_refuse_constant, parse_float=_finite_float, parse_int=_bounded_int
)
# An escape that may be half of a surrogate pair; a false hit (`\\\\ud800`, a proper pair)
# only costs the check above. Raw surrogates cannot get past the strict UTF-8 decode.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def encode(message: JsonObject | list[Any]) -> bytes:
    """Compact UTF-8 JSON with no newline inside (stdio framing forbids embedded newlines)."""
    return encode_text(message).encode("utf-8")


def encode_text(value: object) -> str:
    """`encode` before the UTF-8 step, of any JSON value (ValueError for NaN, Infinity)."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def id_leading(message: JsonObject) -> JsonObject:
    """`message` with `jsonrpc` and `id` as its first members (the rest in their order):
    the shape in which the shim reads a reply's id from its first bytes instead of parsing
    it (shim/flights.py). Servers built on the TypeScript SDK put `result` first."""
    members = iter(message)
    if next(members, None) == "jsonrpc" and next(members, None) == "id":
        return message  # the common case, checked without a copy
    if "id" not in message:
        return message
    leading: JsonObject = {name: message[name] for name in ("jsonrpc", "id") if name in message}
    leading.update(message)
    return leading


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
