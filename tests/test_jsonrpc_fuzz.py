"""`jsonrpc.decode` on anything: it returns a message or raises InvalidMessage, nothing else,
and whatever it returns can be encoded again (issue 8: no input that breaks the bridge).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_bridge import jsonrpc
from mcp_bridge.jsonrpc import InvalidMessage
from tests.fixtures.json_ish import json_ish


def _decode_or_refuse(line: bytes | str) -> None:
    """The contract: InvalidMessage or a value that survives encode and decode unchanged."""
    try:
        value = jsonrpc.decode(line)
    except InvalidMessage as exc:
        refused_with = exc.code
    else:
        assert jsonrpc.decode(jsonrpc.encode(value)) == value
        return
    assert refused_with in (jsonrpc.PARSE_ERROR, jsonrpc.INVALID_REQUEST)


@given(st.binary(max_size=200))
def test_arbitrary_bytes(line: bytes) -> None:
    _decode_or_refuse(line)


@given(st.text(max_size=200))
def test_arbitrary_text_including_lone_surrogates(line: str) -> None:
    _decode_or_refuse(line)


@settings(max_examples=300)
@given(json_ish, st.booleans())
def test_arbitrary_json_ish_values(text: str, as_bytes: bool) -> None:
    _decode_or_refuse(text.encode("utf-8", "surrogatepass") if as_bytes else text)


@settings(max_examples=300)
@given(json_ish, json_ish)
def test_arbitrary_values_inside_a_request_envelope(request_id: str, params: str) -> None:
    line = f'{{"jsonrpc":"2.0","id":{request_id},"method":"tools/call","params":{params}}}'
    _decode_or_refuse(line.encode("utf-8", "surrogatepass"))


@pytest.mark.parametrize(
    "line",
    [
        b'{"jsonrpc":"2.0","id":' + b"9" * 5000 + b',"method":"x"}',
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"n":-' + b"1" * 4301 + b"}}",
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"n":NaN}}',
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":[Infinity]}',
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":[-Infinity]}',
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1e400]}',
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":["\\ud800"]}',
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":{"\\udc00":1}}',
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":["\xed\xa0\x80"]}',  # UTF-8 of U+D800
        '{"jsonrpc":"2.0","id":1,"method":"x","params":["\ud800"]}'.encode(
            "utf-8", "surrogatepass"
        ),
        "[1]".encode("utf-16"),  # JSON, but stdio MCP is UTF-8
        b"[" * 990 + b'"\\ud800"' + b"]" * 990,  # too deep to look for the surrogate in
    ],
)
def test_what_cannot_be_carried_is_a_parse_error(line: bytes) -> None:
    with pytest.raises(InvalidMessage) as refused:
        jsonrpc.decode(line)
    assert refused.value.code == jsonrpc.PARSE_ERROR
    assert "set_int_max_str_digits" not in str(refused.value)  # no CPython advice to clients


def test_a_lone_surrogate_in_text_input_is_a_parse_error() -> None:
    with pytest.raises(InvalidMessage) as refused:
        jsonrpc.decode('{"jsonrpc":"2.0","id":1,"method":"x","params":["\ud800"]}')
    assert refused.value.code == jsonrpc.PARSE_ERROR


@pytest.mark.parametrize(
    "line",
    [
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":["\\ud83d\\ude00", "\\\\ud800"]}',
        b'{"jsonrpc":"2.0","id":' + b"9" * 4300 + b',"method":"x"}',
        b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1.7976931348623157e308, 5e-324]}',
        b'\xef\xbb\xbf{"jsonrpc":"2.0","id":1,"method":"x"}',  # a UTF-8 byte order mark
    ],
)
def test_what_can_be_carried_still_is(line: bytes) -> None:
    message = jsonrpc.decode(line)
    assert jsonrpc.decode(jsonrpc.encode(message)) == message


@pytest.mark.parametrize("depth", [jsonrpc.MAX_DEPTH + 1, 995, 5000])
def test_nesting_deeper_than_encode_can_follow_is_a_parse_error(depth: int) -> None:
    line = '{"jsonrpc":"2.0","id":1,"method":"x","params":' + "[" * depth + "]" * depth + "}"
    with pytest.raises(InvalidMessage) as refused:
        jsonrpc.decode(line)
    assert refused.value.code == jsonrpc.PARSE_ERROR


def test_nesting_up_to_the_limit_and_many_brackets_side_by_side_are_carried() -> None:
    inner = jsonrpc.MAX_DEPTH - 2  # inside the envelope object and the params array
    deep = "[" * inner + "]" * inner
    wide = ",".join(["{}"] * 1000)
    message = jsonrpc.decode(f'{{"jsonrpc":"2.0","id":1,"method":"x","params":[{deep},{wide}]}}')
    assert jsonrpc.decode(jsonrpc.encode(message)) == message
