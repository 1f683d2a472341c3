"""`x-mcp-header` (MCP 2026-07-28, Tools and Streamable HTTP): annotation rules, header values,
the tools/list filter, and the HeaderMismatch re-read-and-retry. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bridge.bridge.x_mcp_header import (
    ParamHeader,
    UnsafeInteger,
    find_invalid_annotation,
    mcp_param_headers,
    param_headers_of,
)
from tests.fixtures.era_messages import (
    error,
    legacy_session,
    only_local,
    only_remote,
    request,
    result,
)


def schema(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


REGION = {"type": "string", "x-mcp-header": "Region"}


# -- the annotation rules ----------------------------------------------------------------


def test_a_valid_annotation_on_a_nested_property_is_accepted() -> None:
    nested = schema(target=schema(region=REGION), count={"type": "integer", "x-mcp-header": "N"})
    assert find_invalid_annotation(nested) is None
    assert set(param_headers_of(nested)) == {
        ParamHeader(("target", "region"), "Region"),
        ParamHeader(("count",), "N"),
    }


@pytest.mark.parametrize(
    ("bad_schema", "reason"),
    [
        (schema(a={"type": "string", "x-mcp-header": ""}), "not an HTTP header token"),
        (schema(a={"type": "string", "x-mcp-header": "Re gion"}), "not an HTTP header token"),
        (schema(a={"type": "string", "x-mcp-header": "A\r\nB"}), "not an HTTP header token"),
        (schema(a={"type": "string", "x-mcp-header": 7}), "not an HTTP header token"),
        (schema(a={"type": "number", "x-mcp-header": "A"}), "not on a string, integer"),
        (schema(a={"type": "object", "x-mcp-header": "A"}), "not on a string, integer"),
        (schema(a={"x-mcp-header": "A"}), "not on a string, integer"),
        (schema(a=REGION, b={"type": "string", "x-mcp-header": "region"}), "repeats"),
        ({"type": "array", "items": REGION}, "not reachable through `properties`"),
        ({"anyOf": [schema(a=REGION)]}, "not reachable through `properties`"),
        ({"$defs": {"r": REGION}}, "not reachable through `properties`"),
        ({"if": schema(a=REGION)}, "not reachable through `properties`"),
        ({"type": "string", "x-mcp-header": "Root"}, "not reachable through `properties`"),
    ],
)
def test_invalid_annotations_are_named(bad_schema: dict[str, Any], reason: str) -> None:
    found = find_invalid_annotation(bad_schema)
    assert found is not None
    assert reason in found


def test_annotation_lookalikes_in_data_keywords_are_not_annotations() -> None:
    assert find_invalid_annotation(schema(a={"type": "object", "default": REGION})) is None


def test_a_nullable_primitive_may_carry_an_annotation() -> None:
    nullable = schema(a={"type": ["string", "null"], "x-mcp-header": "A"})
    assert find_invalid_annotation(nullable) is None


# -- values ------------------------------------------------------------------------------

ANNOTATED = (
    ParamHeader(("s",), "S"),
    ParamHeader(("i",), "I"),
    ParamHeader(("b",), "B"),
    ParamHeader(("o", "deep"), "Deep"),
)


def test_values_are_converted_as_the_spec_says() -> None:
    headers = mcp_param_headers(
        ANNOTATED, {"s": "us-west1", "i": -7, "b": False, "o": {"deep": 4.0}}
    )
    assert headers == {
        "Mcp-Param-S": "us-west1",
        "Mcp-Param-I": "-7",
        "Mcp-Param-B": "false",
        "Mcp-Param-Deep": "4",
    }


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        ("Hello, 世界", "=?base64?SGVsbG8sIOS4lueVjA==?="),
        (" padded ", "=?base64?IHBhZGRlZCA=?="),
        ("line1\nline2", "=?base64?bGluZTEKbGluZTI=?="),
        ("=?base64?literal?=", "=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?="),
    ],
)
def test_unsafe_values_use_the_base64_sentinel(value: str, encoded: str) -> None:
    # The spec's own examples (streamable-http.mdx, "Value Encoding").
    assert mcp_param_headers((ParamHeader(("s",), "S"),), {"s": value}) == {"Mcp-Param-S": encoded}


def test_absent_null_and_unrenderable_values_omit_the_header() -> None:
    assert mcp_param_headers(ANNOTATED, {"s": None, "b": [1], "o": "not an object"}) == {}


def test_an_integer_beyond_the_javascript_safe_range_is_refused() -> None:
    with pytest.raises(UnsafeInteger):
        mcp_param_headers(ANNOTATED, {"i": 2**53})


# -- through the translator --------------------------------------------------------------

TOOLS = {
    "tools": [
        {"name": "deploy", "inputSchema": schema(region=REGION, size={"type": "integer"})},
        {"name": "broken", "inputSchema": schema(x={"type": "number", "x-mcp-header": "X"})},
        {"name": "plain", "inputSchema": schema()},
    ],
    "nextCursor": "page-2",
}


def listed(translator: Any, tools: dict[str, Any] = TOOLS) -> dict[str, Any]:
    only_remote(translator.from_local(request(1, "tools/list")))
    out = translator.from_remote(result(1, tools))
    assert out.warnings == (
        "dropped tool 'broken': x-mcp-header on 'x' is not on a string, integer or boolean "
        "property",
    )
    reply: dict[str, Any] = only_local(out)["result"]
    return reply


def test_tools_list_drops_tools_with_invalid_annotations_and_keeps_the_rest() -> None:
    translator, _ = legacy_session()
    reply = listed(translator)
    assert [tool["name"] for tool in reply["tools"]] == ["deploy", "plain"]
    assert reply["nextCursor"] == "page-2"


def test_tools_call_carries_mcp_param_headers_for_annotated_arguments() -> None:
    translator, _ = legacy_session()
    listed(translator)
    call = {"name": "deploy", "arguments": {"region": "eu-west", "size": 3}}
    out = translator.from_local(request(2, "tools/call", call))
    assert dict(out.to_remote[0].headers) == {"Mcp-Param-Region": "eu-west"}
    other = translator.from_local(request(3, "tools/call", {"name": "plain", "arguments": {}}))
    assert dict(other.to_remote[0].headers) == {}


def test_an_unsafe_integer_argument_is_refused_locally() -> None:
    translator, _ = legacy_session()
    int_tool = {"name": "t", "inputSchema": schema(n={"type": "integer", "x-mcp-header": "N"})}
    only_remote(translator.from_local(request(1, "tools/list")))
    translator.from_remote(result(1, {"tools": [int_tool]}))
    out = translator.from_local(request(2, "tools/call", {"name": "t", "arguments": {"n": 2**60}}))
    assert out.to_remote == ()
    assert only_local(out)["error"]["code"] == -32602


def test_header_mismatch_rereads_tools_list_and_retries_once() -> None:
    translator, _ = legacy_session()
    call = {"name": "deploy", "arguments": {"region": "eu"}}
    first = only_remote(translator.from_local(request(5, "tools/call", call)))
    refresh = only_remote(translator.from_remote(error(first["id"], -32020, "missing header")))
    assert refresh["method"] == "tools/list"
    assert "cursor" not in refresh["params"]
    page_1 = {"tools": [{"name": "plain", "inputSchema": schema()}], "nextCursor": "c2"}
    page_2_request = only_remote(translator.from_remote(result(refresh["id"], page_1)))
    assert page_2_request["params"]["cursor"] == "c2"
    page_2 = {"tools": [{"name": "deploy", "inputSchema": schema(region=REGION)}]}
    out = translator.from_remote(result(page_2_request["id"], page_2))
    assert out.to_local == ()  # the re-read list is the bridge's, not the client's
    retry = out.to_remote[0]
    assert retry.message["id"] != first["id"]
    assert retry.message["params"]["arguments"] == {"region": "eu"}
    assert dict(retry.headers) == {"Mcp-Param-Region": "eu"}
    # A second mismatch goes to the client under its own id.
    final = only_local(translator.from_remote(error(retry.message["id"], -32020, "still")))
    assert final == error(5, -32020, "still")


def test_a_failed_reread_gives_the_client_a_clear_error() -> None:
    translator, _ = legacy_session()
    call = {"name": "deploy", "arguments": {"region": "eu"}}
    first = only_remote(translator.from_local(request(5, "tools/call", call)))
    refresh = only_remote(translator.from_remote(error(first["id"], -32020, "missing header")))
    reply = only_local(translator.from_remote(error(refresh["id"], -32603)))
    assert reply["id"] == 5
    assert reply["error"]["code"] == -32020
    assert "could not re-read its tool list" in reply["error"]["message"]


def test_a_header_retry_of_an_mrtr_retry_keeps_its_input_responses() -> None:
    translator, _ = legacy_session()
    call = {"name": "deploy", "arguments": {"region": "eu"}}
    first = only_remote(translator.from_local(request(5, "tools/call", call)))
    elicit = {"method": "elicitation/create", "params": {"message": "ok?"}}
    needs_input = {"resultType": "input_required", "inputRequests": {"k": elicit}}
    asked = only_local(
        translator.from_remote(result(first["id"], {**needs_input, "requestState": "s"}))
    )
    mrtr_retry = only_remote(translator.from_local(result(asked["id"], {"action": "accept"})))
    refresh = only_remote(translator.from_remote(error(mrtr_retry["id"], -32020, "missing")))
    tools = {"tools": [{"name": "deploy", "inputSchema": schema(region=REGION)}]}
    header_retry = translator.from_remote(result(refresh["id"], tools)).to_remote[0]
    assert header_retry.message["params"]["inputResponses"] == {"k": {"action": "accept"}}
    assert header_retry.message["params"]["requestState"] == "s"
    assert dict(header_retry.headers) == {"Mcp-Param-Region": "eu"}
