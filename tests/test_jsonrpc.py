"""The JSON-RPC envelope: what counts as which message, and what is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge import jsonrpc
from mcp_bridge.jsonrpc import InvalidMessage, Kind


def test_request_notification_and_response_are_told_apart() -> None:
    assert jsonrpc.kind_of({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}) is Kind.REQUEST
    assert jsonrpc.kind_of({"jsonrpc": "2.0", "method": "notifications/x"}) is Kind.NOTIFICATION
    assert jsonrpc.kind_of({"jsonrpc": "2.0", "id": "a", "result": {}}) is Kind.RESPONSE
    assert jsonrpc.kind_of({"jsonrpc": "2.0", "id": None, "error": {}}) is Kind.RESPONSE


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({"id": 1, "method": "x"}, '"jsonrpc" must be "2.0"'),
        ({"jsonrpc": "2.0", "id": 1, "method": 5}, '"method" must be a string'),
        ({"jsonrpc": "2.0", "id": True, "method": "x"}, '"id" must be a string or an integer'),
        ({"jsonrpc": "2.0", "id": 1.5, "method": "x"}, '"id" must be a string or an integer'),
        ({"jsonrpc": "2.0", "id": 1}, "needs a method"),
    ],
)
def test_invalid_envelopes_are_refused_with_a_reason(
    message: dict[str, object], reason: str
) -> None:
    with pytest.raises(InvalidMessage, match=reason) as refused:
        jsonrpc.kind_of(message)
    assert refused.value.code == jsonrpc.INVALID_REQUEST


def test_invalid_request_keeps_its_id_for_the_error_reply() -> None:
    with pytest.raises(InvalidMessage) as refused:
        jsonrpc.kind_of({"jsonrpc": "1.0", "id": "abc", "method": "x"})
    assert refused.value.request_id == "abc"


@pytest.mark.parametrize("line", [b"{not json", b"\xff\xfe{}", b'{"a": 1'])
def test_undecodable_lines_are_parse_errors(line: bytes) -> None:
    with pytest.raises(InvalidMessage) as refused:
        jsonrpc.decode(line)
    assert refused.value.code == jsonrpc.PARSE_ERROR


@pytest.mark.parametrize("line", [b"[]", b"42", b'"text"', b"null"])
def test_json_that_is_no_message_is_an_invalid_request(line: bytes) -> None:
    with pytest.raises(InvalidMessage) as refused:
        jsonrpc.decode(line)
    assert refused.value.code == jsonrpc.INVALID_REQUEST


def test_unknown_fields_big_numbers_and_id_types_survive_a_round_trip() -> None:
    line = (
        b'{"jsonrpc":"2.0","id":"7","method":"tools/call","x-vendor":{"keep":[1,2.5,null]},'
        b'"params":{"n":123456789012345678901234567890,"f":0.1,"s":"\xc3\xa9\\n"}}'
    )
    message = jsonrpc.decode(line)
    assert isinstance(message, dict)
    again = jsonrpc.decode(jsonrpc.encode(message))
    assert again == message
    assert again["id"] == "7"
    assert b"\n" not in jsonrpc.encode(message)


def test_encode_refuses_nan_rather_than_writing_invalid_json() -> None:
    with pytest.raises(ValueError, match="JSON compliant"):
        jsonrpc.encode({"jsonrpc": "2.0", "id": 1, "result": {"x": float("nan")}})


@given(
    st.permutations(["jsonrpc", "id", "result", "_meta"]),
    st.one_of(st.integers(), st.text(max_size=10)),
)
def test_id_leading_puts_jsonrpc_and_id_first_and_keeps_every_member(
    order: list[str], request_id: int | str
) -> None:
    values = {"jsonrpc": "2.0", "id": request_id, "result": {"a": [1]}, "_meta": {}}
    message = {name: values[name] for name in order}
    leading = jsonrpc.id_leading(message)
    assert leading == message
    assert list(leading)[:2] == ["jsonrpc", "id"]
    assert jsonrpc.encode(leading).startswith(b'{"jsonrpc":"2.0","id":')


def test_id_leading_leaves_a_message_without_an_id_as_it_is() -> None:
    notification = {"method": "notifications/progress", "jsonrpc": "2.0"}
    assert list(jsonrpc.id_leading(notification)) == ["method", "jsonrpc"]
