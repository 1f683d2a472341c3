"""Era translation, legacy stdio client <-> 2026-07-28 remote: one test per rule of the
table in bridge/era.py's docstring, driving the translator with dict messages (no sockets)."""

from __future__ import annotations

from typing import Any

import pytest

from mcp_bridge.bridge.connector import choose_translator
from mcp_bridge.bridge.era import ModernRemoteTranslator, Outgoing
from mcp_bridge.bridge.session import Passthrough, RemoteLink
from mcp_bridge.errors import RemoteError
from mcp_bridge.protocol import Era
from tests.fixtures.era_messages import (
    CLIENT_INFO,
    DISCOVER,
    META_CAPS,
    META_INFO,
    META_LOG,
    META_VERSION,
    SERVER_INFO,
    V,
    error,
    initialize,
    legacy_session,
    notification,
    only_local,
    only_remote,
    request,
    result,
    stream_broke,
)

# -- handshake and local answers ---------------------------------------------------------


def test_initialize_is_answered_locally_from_the_discover_result() -> None:
    out = ModernRemoteTranslator(DISCOVER).from_local(initialize("2025-06-18"))
    assert out.to_remote == ()
    reply = only_local(out)
    assert reply["id"] == 0
    assert reply["result"] == {
        "protocolVersion": "2025-06-18",  # the client's own, since we know it
        "capabilities": DISCOVER["capabilities"],  # listChanged/subscribe kept: listen serves them
        "serverInfo": SERVER_INFO,
        "instructions": "Ask about the weather.",
    }


def test_initialize_with_an_unknown_version_is_offered_2025_11_25() -> None:
    reply = only_local(ModernRemoteTranslator(DISCOVER).from_local(initialize("2099-01-01")))
    assert reply["result"]["protocolVersion"] == "2025-11-25"


def test_initialize_without_server_info_names_the_bridge() -> None:
    discover = {k: v for k, v in DISCOVER.items() if k != "_meta"}
    bridge = {"name": "mcp-bridge", "version": "9"}
    translator = ModernRemoteTranslator(discover, bridge_info=bridge)
    assert only_local(translator.from_local(initialize()))["result"]["serverInfo"] == bridge


def test_second_initialize_is_answered_again() -> None:
    translator, _ = legacy_session()
    again = translator.from_local({**initialize("2025-11-25"), "id": 7})
    assert only_local(again)["result"]["protocolVersion"] == "2025-11-25"
    assert only_local(again)["id"] == 7


def test_ping_is_answered_locally() -> None:
    translator, _ = legacy_session()
    assert translator.from_local(request(3, "ping")) == Outgoing(
        to_local=({"jsonrpc": "2.0", "id": 3, "result": {}},)
    )


def test_server_discover_from_the_client_is_answered_with_handshake_versions_too() -> None:
    out = ModernRemoteTranslator(DISCOVER).from_local(request(1, "server/discover"))
    reply = only_local(out)["result"]
    assert reply["supportedVersions"][0] == V
    assert "2025-11-25" in reply["supportedVersions"]  # an `initialize` may follow
    assert reply["capabilities"] == DISCOVER["capabilities"]


def test_a_remote_with_no_modern_version_we_speak_is_refused() -> None:
    with pytest.raises(RemoteError, match="none of which"):
        ModernRemoteTranslator({**DISCOVER, "supportedVersions": ["2030-01-01"]})


def test_the_translator_is_picked_by_the_remote_era_alone() -> None:
    transport: Any = None  # choose_translator never touches the transport
    modern = RemoteLink(transport, Era.MODERN, discover_result=DISCOVER)
    legacy = RemoteLink(transport, Era.LEGACY)
    assert isinstance(choose_translator(initialize(), modern), ModernRemoteTranslator)
    modern_first = request(1, "tools/list", {"_meta": {META_VERSION: V}})
    assert isinstance(choose_translator(modern_first, modern), ModernRemoteTranslator)
    assert isinstance(choose_translator(initialize(), legacy), Passthrough)


# -- requests going up -------------------------------------------------------------------


def test_request_carries_the_modern_meta_and_keeps_the_clients_keys() -> None:
    translator, _ = legacy_session()
    params = {"name": "forecast", "arguments": {}, "_meta": {"progressToken": "p1"}}
    sent = only_remote(translator.from_local(request(5, "tools/call", params)))
    assert sent["id"] == 5  # the client's id is kept
    assert sent["params"]["name"] == "forecast"
    meta = sent["params"]["_meta"]
    assert meta["progressToken"] == "p1"
    assert meta[META_VERSION] == V
    assert meta[META_INFO] == CLIENT_INFO
    assert META_LOG not in meta


def test_client_capabilities_upstream_are_only_what_the_bridge_can_relay() -> None:
    translator, _ = legacy_session()
    sent = only_remote(translator.from_local(request(5, "prompts/list")))
    assert sent["params"]["_meta"][META_CAPS] == {
        "elicitation": {"form": {}},
        "sampling": {},
        "roots": {},  # roots/list_changed no longer exists upstream
    }  # tasks (2025-11-25 only) and experimental cannot cross eras


def test_request_before_initialize_declares_no_capabilities_and_names_the_bridge() -> None:
    translator = ModernRemoteTranslator(DISCOVER)
    meta = only_remote(translator.from_local(request(1, "tools/list")))["params"]["_meta"]
    assert meta[META_CAPS] == {}
    assert meta[META_INFO]["name"] == "mcp-bridge"


def test_set_level_is_answered_and_rides_on_later_requests() -> None:
    translator, _ = legacy_session()
    reply = translator.from_local(request(2, "logging/setLevel", {"level": "debug"}))
    assert only_local(reply)["result"] == {}
    assert reply.to_remote == ()
    sent = only_remote(translator.from_local(request(3, "resources/list")))
    assert sent["params"]["_meta"][META_LOG] == "debug"


def test_a_client_id_that_looks_like_ours_is_remapped_and_mapped_back() -> None:
    translator, _ = legacy_session()
    sent = only_remote(translator.from_local(request("mcp-bridge:listen-1", "tools/list")))
    assert sent["id"] != "mcp-bridge:listen-1"
    back = translator.from_remote(result(sent["id"], {"tools": []}))
    assert only_local(back)["id"] == "mcp-bridge:listen-1"


def test_a_modern_clients_request_goes_up_untouched() -> None:
    translator = ModernRemoteTranslator(DISCOVER)
    params = {"_meta": {META_VERSION: V, META_CAPS: {"sampling": {}}, META_INFO: CLIENT_INFO}}
    sent = only_remote(translator.from_local(request(1, "tools/list", params)))
    assert sent == request(1, "tools/list", params)
    input_required = {"resultType": "input_required", "requestState": "s"}
    back = translator.from_remote(result(1, input_required))
    assert only_local(back)["result"] == input_required  # it runs its own MRTR


# -- results coming back -----------------------------------------------------------------


def test_results_pass_through_with_their_modern_fields() -> None:
    translator, _ = legacy_session()
    translator.from_local(request(4, "resources/read", {"uri": "file:///a"}))
    body = {"resultType": "complete", "contents": [], "ttlMs": 5, "cacheScope": "private"}
    assert only_local(translator.from_remote(result(4, body))) == result(4, body)


def test_a_result_without_result_type_counts_as_complete() -> None:
    translator, _ = legacy_session()
    translator.from_local(request(4, "prompts/list"))
    assert only_local(translator.from_remote(result(4, {"prompts": []})))["result"] == {
        "prompts": []
    }


def test_errors_pass_through_under_the_clients_id() -> None:
    translator, _ = legacy_session()
    translator.from_local(request(4, "prompts/get", {"name": "x"}))
    assert only_local(translator.from_remote(error(4, -32602))) == error(4, -32602)


def test_an_unrecognised_result_type_becomes_an_error() -> None:
    translator, _ = legacy_session()
    translator.from_local(request(4, "tools/call", {"name": "x", "arguments": {}}))
    reply = only_local(translator.from_remote(result(4, {"resultType": "task"})))
    assert reply["error"]["code"] == -32603
    assert "'task'" in reply["error"]["message"]


def test_input_required_on_a_method_without_mrtr_is_invalid() -> None:
    translator, _ = legacy_session()
    translator.from_local(request(4, "tools/list"))
    reply = translator.from_remote(result(4, {"resultType": "input_required", "requestState": "s"}))
    assert only_local(reply)["error"]["code"] == -32603


def test_responses_to_unknown_ids_are_dropped() -> None:
    translator, _ = legacy_session()
    assert translator.from_remote(result(99, {})) == Outgoing()
    assert translator.from_local(result("mcp-bridge:input-99", {})) == Outgoing()


def test_a_request_from_the_remote_is_ignored_with_a_warning() -> None:
    translator, _ = legacy_session()
    out = translator.from_remote(request(1, "sampling/createMessage", {}))
    assert out.to_local == ()
    assert out.warnings


def test_a_broken_stream_answers_the_client_with_an_error() -> None:
    translator, _ = legacy_session()
    translator.from_local(request(4, "tools/call", {"name": "x", "arguments": {}}))
    reply = only_local(translator.from_remote(stream_broke(4, "the connection broke")))
    assert reply["id"] == 4
    assert reply["error"]["code"] == -32000
    assert "the connection broke" in reply["error"]["message"]


def test_a_read_only_request_whose_stream_broke_is_issued_once_more_under_a_new_id() -> None:
    translator, _ = legacy_session()
    first = only_remote(translator.from_local(request(4, "tools/list")))
    again = only_remote(translator.from_remote(stream_broke(first["id"], "the stream broke")))
    assert again["id"] != first["id"]
    assert again["method"] == "tools/list"
    assert again["params"] == first["params"]
    reply = only_local(translator.from_remote(stream_broke(again["id"], "broke again")))
    assert (reply["id"], reply["error"]["code"]) == (4, -32000)


def test_a_tool_call_whose_stream_broke_is_not_run_twice() -> None:
    translator, _ = legacy_session()
    sent = only_remote(translator.from_local(request(5, "tools/call", {"name": "pay"})))
    out = translator.from_remote(stream_broke(sent["id"], "the stream broke"))
    assert out.to_remote == ()
    assert only_local(out)["id"] == 5


# -- notifications -----------------------------------------------------------------------


def test_roots_list_changed_and_unknown_notifications_are_dropped() -> None:
    translator, _ = legacy_session()
    assert translator.from_local(notification("notifications/roots/list_changed")) == Outgoing()
    assert translator.from_local(notification("notifications/progress", {})) == Outgoing()


def test_progress_and_log_notifications_pass_through() -> None:
    translator, _ = legacy_session()
    progress = notification("notifications/progress", {"progressToken": "p1", "progress": 1})
    log = notification("notifications/message", {"level": "info", "data": "hi"})
    assert only_local(translator.from_remote(progress)) == progress
    assert only_local(translator.from_remote(log)) == log


def test_cancelling_a_forwarded_request_closes_its_stream() -> None:
    translator, _ = legacy_session()
    translator.from_local(request(4, "tools/call", {"name": "slow", "arguments": {}}))
    out = translator.from_local(notification("notifications/cancelled", {"requestId": 4}))
    assert out == Outgoing(cancel_remote=(4,))  # HTTP cancel: no notification goes up
    assert translator.from_remote(result(4, {"content": []})) == Outgoing()  # late: dropped


def test_cancelling_an_unknown_request_is_ignored() -> None:
    translator, _ = legacy_session()
    out = translator.from_local(notification("notifications/cancelled", {"requestId": 42}))
    assert out == Outgoing()


def test_a_client_that_probes_with_discover_may_still_initialize() -> None:
    # Claude Code and Copilot CLI send `initialize` after a modern discover (reported by their
    # users; docs/desktop-hosts.md).
    translator = ModernRemoteTranslator(DISCOVER)
    probe = request("p", "server/discover", {"_meta": {META_VERSION: V, META_CAPS: {}}})
    assert only_local(translator.from_local(probe))["result"]["supportedVersions"][0] == V
    assert only_local(translator.from_local(initialize()))["result"]["serverInfo"] == SERVER_INFO
    sent = translator.from_local(request(1, "prompts/list")).to_remote[0].message
    assert sent["method"] == "prompts/list"
    assert sent["params"]["_meta"][META_INFO] == CLIENT_INFO  # translated as legacy
