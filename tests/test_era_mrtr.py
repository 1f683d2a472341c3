"""MRTR translation (MCP 2026-07-28, Multi Round-Trip Requests): a remote's `input_required`
played to a legacy client as server -> client requests, answers collected, the original request
retried. Pure."""

from __future__ import annotations

from typing import Any

from mcp_bridge.bridge.era import Outgoing
from mcp_bridge.bridge.mrtr import MAX_ROUNDS
from tests.fixtures.era_messages import (
    error,
    legacy_session,
    notification,
    only_local,
    only_remote,
    request,
    result,
)

ELICIT: dict[str, Any] = {
    "method": "elicitation/create",
    "params": {"message": "Deploy?", "requestedSchema": {"type": "object", "properties": {}}},
}
SAMPLE: dict[str, Any] = {
    "method": "sampling/createMessage",
    "params": {"messages": [], "maxTokens": 5},
}
ROOTS = {"method": "roots/list", "params": {}}
CALL = {"name": "deploy", "arguments": {"region": "eu"}, "_meta": {"progressToken": 9}}


def input_required(requests: dict[str, Any], state: str | None = "opaque-1") -> dict[str, Any]:
    body: dict[str, Any] = {"resultType": "input_required", "inputRequests": requests}
    if state is not None:
        body["requestState"] = state
    return body


def called(caps: dict[str, Any] | None = None) -> Any:
    """A legacy session with `tools/call` id 7 sent upstream."""
    translator, _ = legacy_session(caps)
    sent = only_remote(translator.from_local(request(7, "tools/call", CALL)))
    return translator, sent


def test_elicitation_round_trip_retries_with_a_new_id_and_maps_the_answer_back() -> None:
    translator, sent = called()
    asked = only_local(translator.from_remote(result(7, input_required({"confirm": ELICIT}))))
    assert asked["method"] == "elicitation/create"
    assert asked["params"] == ELICIT["params"]
    assert str(asked["id"]).startswith("mcp-bridge:")

    retry = only_remote(translator.from_local(result(asked["id"], {"action": "accept"})))
    assert retry["id"] != 7  # MRTR: the retry has a new id
    assert retry["method"] == "tools/call"
    assert retry["params"]["inputResponses"] == {"confirm": {"action": "accept"}}
    assert retry["params"]["requestState"] == "opaque-1"
    assert retry["params"]["arguments"] == CALL["arguments"]
    assert retry["params"]["_meta"] == sent["params"]["_meta"]  # progressToken and all

    final = translator.from_remote(result(retry["id"], {"content": [], "resultType": "complete"}))
    assert only_local(final) == result(7, {"content": [], "resultType": "complete"})


def test_a_round_waits_for_every_input_request() -> None:
    translator, _ = called()
    out = translator.from_remote(result(7, input_required({"a": ELICIT, "b": SAMPLE, "c": ROOTS})))
    assert [m["method"] for m in out.to_local] == [
        "elicitation/create",
        "sampling/createMessage",
        "roots/list",
    ]
    ids = [m["id"] for m in out.to_local]
    assert len(set(ids)) == 3
    assert translator.from_local(result(ids[2], {"roots": []})) == Outgoing()
    assert translator.from_local(result(ids[0], {"action": "decline"})) == Outgoing()
    retry = only_remote(translator.from_local(result(ids[1], {"role": "assistant"})))
    assert retry["params"]["inputResponses"] == {
        "a": {"action": "decline"},
        "b": {"role": "assistant"},
        "c": {"roots": []},
    }


def test_a_second_round_is_played_the_same_way_with_the_newest_state() -> None:
    translator, _ = called()
    asked = only_local(translator.from_remote(result(7, input_required({"a": ELICIT}))))
    retry = only_remote(translator.from_local(result(asked["id"], {"action": "accept"})))
    again = translator.from_remote(result(retry["id"], input_required({"b": ELICIT}, "opaque-2")))
    asked2 = only_local(again)
    retry2 = only_remote(translator.from_local(result(asked2["id"], {"action": "cancel"})))
    assert retry2["id"] not in (7, retry["id"])
    assert retry2["params"]["inputResponses"] == {"b": {"action": "cancel"}}
    assert retry2["params"]["requestState"] == "opaque-2"
    assert only_local(translator.from_remote(result(retry2["id"], {"content": []})))["id"] == 7


def test_rounds_are_capped() -> None:
    translator, sent = called()
    remote_id = sent["id"]
    for _ in range(MAX_ROUNDS):
        asked = only_local(translator.from_remote(result(remote_id, input_required({"a": ELICIT}))))
        remote_id = only_remote(translator.from_local(result(asked["id"], {"action": "accept"})))[
            "id"
        ]
    reply = only_local(translator.from_remote(result(remote_id, input_required({"a": ELICIT}))))
    assert reply["id"] == 7
    assert "asked for input more than 10 times" in reply["error"]["message"]


def test_request_state_alone_is_retried_at_once_without_inventing_responses() -> None:
    translator, _ = called()
    out = translator.from_remote(result(7, input_required({}, "busy")))
    assert out.to_local == ()
    retry = only_remote(out)
    assert retry["params"]["requestState"] == "busy"
    assert "inputResponses" not in retry["params"]


def test_no_request_state_is_sent_when_none_was_given() -> None:
    translator, _ = called()
    asked = only_local(translator.from_remote(result(7, input_required({"a": ELICIT}, None))))
    retry = only_remote(translator.from_local(result(asked["id"], {"action": "accept"})))
    assert "requestState" not in retry["params"]


def test_a_client_without_the_capability_gets_a_clear_error() -> None:
    translator, _ = called(caps={"roots": {}})
    out = translator.from_remote(result(7, input_required({"a": ELICIT})))
    reply = only_local(out)
    assert reply["id"] == 7
    assert reply["error"]["code"] == -32021
    assert "elicitation" in reply["error"]["message"]


def test_sampling_with_tools_needs_the_tools_capability() -> None:
    translator, _ = called(caps={"sampling": {}})
    sample_with_tools = {**SAMPLE, "params": {**SAMPLE["params"], "tools": []}}
    reply = only_local(translator.from_remote(result(7, input_required({"s": sample_with_tools}))))
    assert "sampling with tools" in reply["error"]["message"]


def test_url_elicitation_gets_the_elicitation_id_a_legacy_client_needs() -> None:
    translator, _ = called(caps={"elicitation": {"url": {}}})
    url_mode = {
        "method": "elicitation/create",
        "params": {"mode": "url", "message": "Sign in", "url": "https://x.example/login"},
    }
    asked = only_local(translator.from_remote(result(7, input_required({"u": url_mode}))))
    assert asked["params"]["elicitationId"]
    assert asked["params"]["url"] == "https://x.example/login"


def test_a_client_error_fails_the_request_and_cancels_the_rest_of_the_round() -> None:
    translator, _ = called()
    out = translator.from_remote(result(7, input_required({"a": ELICIT, "b": ELICIT})))
    first, second = (m["id"] for m in out.to_local)
    failed = translator.from_local(error(first, -1, "User rejected"))
    assert failed.to_remote == ()
    cancel, reply = failed.to_local
    assert cancel == notification(
        "notifications/cancelled", {"requestId": second, "reason": "another input request failed"}
    )
    assert reply["id"] == 7
    assert "User rejected" in reply["error"]["message"]
    assert translator.from_local(result(second, {"action": "accept"})) == Outgoing()


def test_cancelling_during_a_round_drops_it_and_later_answers() -> None:
    translator, _ = called()
    asked = only_local(translator.from_remote(result(7, input_required({"a": ELICIT}))))
    out = translator.from_local(notification("notifications/cancelled", {"requestId": 7}))
    assert out.cancel_remote == ()  # nothing is under way upstream
    assert only_local(out)["params"]["requestId"] == asked["id"]  # the dialog can close
    assert translator.from_local(result(asked["id"], {"action": "accept"})) == Outgoing()


def test_cancelling_a_retry_closes_its_stream() -> None:
    translator, _ = called()
    asked = only_local(translator.from_remote(result(7, input_required({"a": ELICIT}))))
    retry = only_remote(translator.from_local(result(asked["id"], {"action": "accept"})))
    out = translator.from_local(notification("notifications/cancelled", {"requestId": 7}))
    assert out == Outgoing(cancel_remote=(retry["id"],))


def test_an_invalid_input_required_result_becomes_an_error() -> None:
    translator, _ = called()
    reply = only_local(translator.from_remote(result(7, {"resultType": "input_required"})))
    assert reply["error"]["code"] == -32603
    assert "neither" in reply["error"]["message"]
