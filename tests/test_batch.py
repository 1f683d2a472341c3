"""Batches from old clients are answered with one array once every request is answered."""

from __future__ import annotations

from mcp_bridge.bridge.batch import BatchCollector
from mcp_bridge.jsonrpc import error_response, result_response


def test_batch_reply_waits_for_every_request() -> None:
    batches = BatchCollector()
    assert batches.open([1, "two"], early=[]) is None
    held, complete = batches.offer(result_response("two", {"b": 1}))
    assert held
    assert complete is None
    held, complete = batches.offer(result_response(1, {"a": 1}))
    assert held
    assert complete == [result_response("two", {"b": 1}), result_response(1, {"a": 1})]


def test_responses_outside_a_batch_are_not_held() -> None:
    batches = BatchCollector()
    batches.open([1], early=[])
    assert batches.offer(result_response(2, {})) == (False, None)
    assert batches.offer({"jsonrpc": "2.0", "method": "notifications/progress"}) == (False, None)


def test_batch_of_only_invalid_members_is_answered_at_once() -> None:
    bad = error_response(None, -32600, "not a JSON object")
    assert BatchCollector().open([], early=[bad]) == [bad]


def test_batch_of_only_notifications_gets_no_reply() -> None:
    assert BatchCollector().open([], early=[]) is None


def test_a_request_from_the_remote_is_never_held_even_with_a_batch_id() -> None:
    batches = BatchCollector()
    batches.open([1], early=[])
    sampling = {"jsonrpc": "2.0", "id": 1, "method": "sampling/createMessage", "params": {}}
    assert batches.offer(sampling) == (False, None)


def test_a_cancelled_member_no_longer_holds_the_batch_back() -> None:
    batches = BatchCollector()
    batches.open([1, 2], early=[])
    assert batches.offer(result_response(1, {})) == (True, None)
    assert batches.abandon(2) == [result_response(1, {})]
    assert batches.offer(result_response(2, {})) == (False, None)  # late: goes out alone
