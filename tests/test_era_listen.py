"""Subscriptions (MCP 2026-07-28): a legacy client's list-changed interest and resources/subscribe
served by one `subscriptions/listen` with the union filter. Pure."""

from __future__ import annotations

from typing import Any

from mcp_bridge.bridge.era import ModernRemoteTranslator, Outgoing
from mcp_bridge.bridge.listen import MAX_REOPENS
from tests.fixtures.era_messages import (
    DISCOVER,
    META_SUB,
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


def on_stream(listen_id: str, method: str, params: dict[str, Any] | None = None) -> Any:
    return notification(method, {**(params or {}), "_meta": {META_SUB: listen_id}})


def test_initialized_opens_a_listen_for_the_advertised_list_changed() -> None:
    translator = ModernRemoteTranslator(DISCOVER)
    assert translator.from_local(initialize()).to_remote == ()  # not before `initialized`
    listen = only_remote(translator.from_local(notification("notifications/initialized")))
    assert listen["method"] == "subscriptions/listen"
    assert str(listen["id"]).startswith("mcp-bridge:")
    # DISCOVER advertises tools.listChanged only (prompts says false, resources says nothing).
    assert listen["params"]["notifications"] == {"toolsListChanged": True}
    assert listen["params"]["_meta"]["io.modelcontextprotocol/protocolVersion"] == V


def test_no_listen_without_interest() -> None:
    quiet = {**DISCOVER, "capabilities": {"tools": {}}}
    translator = ModernRemoteTranslator(quiet)
    translator.from_local(initialize())
    assert translator.from_local(notification("notifications/initialized")) == Outgoing()
    assert only_remote(translator.from_local(request(1, "tools/list")))["method"] == "tools/list"


def test_subscribe_is_answered_locally_and_reopens_the_listen_with_the_union() -> None:
    translator, opened = legacy_session()
    first = only_remote(opened)
    out = translator.from_local(request(3, "resources/subscribe", {"uri": "file:///a"}))
    assert only_local(out) == result(3, {})
    assert out.cancel_remote == (first["id"],)
    second = only_remote(out)
    assert second["params"]["notifications"] == {
        "toolsListChanged": True,
        "resourceSubscriptions": ["file:///a"],
    }
    out = translator.from_local(request(4, "resources/unsubscribe", {"uri": "file:///a"}))
    assert out.cancel_remote == (second["id"],)
    assert only_remote(out)["params"]["notifications"] == {"toolsListChanged": True}


def test_subscribing_twice_to_the_same_uri_changes_nothing_upstream() -> None:
    translator, _ = legacy_session()
    translator.from_local(request(3, "resources/subscribe", {"uri": "file:///a"}))
    out = translator.from_local(request(4, "resources/subscribe", {"uri": "file:///a"}))
    assert out == Outgoing(to_local=(result(4, {}),))


def test_subscribe_to_a_remote_without_subscriptions_is_an_error() -> None:
    no_subscribe = {**DISCOVER, "capabilities": {"resources": {}}}
    translator = ModernRemoteTranslator(no_subscribe)
    translator.from_local(initialize())
    out = translator.from_local(request(3, "resources/subscribe", {"uri": "file:///a"}))
    assert only_local(out)["error"]["code"] == -32601
    assert out.to_remote == ()


def test_notifications_on_the_listen_lose_the_subscription_id() -> None:
    translator, _ = legacy_session()
    out = translator.from_local(request(3, "resources/subscribe", {"uri": "file:///a"}))
    listen_id = only_remote(out)["id"]  # the re-opened stream
    changed = translator.from_remote(on_stream(listen_id, "notifications/tools/list_changed"))
    assert only_local(changed) == notification("notifications/tools/list_changed")
    updated = translator.from_remote(
        on_stream(listen_id, "notifications/resources/updated", {"uri": "file:///a"})
    )
    assert only_local(updated) == notification(
        "notifications/resources/updated", {"uri": "file:///a"}
    )


def test_updates_for_a_uri_no_longer_subscribed_are_dropped() -> None:
    translator, _ = legacy_session()
    out = translator.from_local(request(3, "resources/subscribe", {"uri": "file:///a"}))
    old_id = only_remote(out)["id"]
    out = translator.from_local(request(4, "resources/unsubscribe", {"uri": "file:///a"}))
    new_id = only_remote(out)["id"]
    # An update that was already on its way on the old stream, then one on the new stream.
    stale = on_stream(old_id, "notifications/resources/updated", {"uri": "file:///a"})
    assert translator.from_remote(stale) == Outgoing()
    fresh = on_stream(new_id, "notifications/resources/updated", {"uri": "file:///a"})
    assert translator.from_remote(fresh) == Outgoing()


def test_the_acknowledgement_is_swallowed_and_a_shortfall_noted() -> None:
    translator, opened = legacy_session()
    listen_id = only_remote(opened)["id"]
    full = on_stream(
        listen_id,
        "notifications/subscriptions/acknowledged",
        {"notifications": {"toolsListChanged": True}},
    )
    assert translator.from_remote(full) == Outgoing()
    short = on_stream(listen_id, "notifications/subscriptions/acknowledged", {"notifications": {}})
    out = translator.from_remote(short)
    assert out.to_local == ()
    assert out.warnings == ("the remote will not send toolsListChanged",)


def test_a_listen_that_ends_is_reopened_until_the_bound_then_on_request() -> None:
    translator, opened = legacy_session()
    listen_id = only_remote(opened)["id"]
    for _ in range(MAX_REOPENS - 1):
        out = translator.from_remote(result(listen_id, {"resultType": "complete"}))
        listen_id = only_remote(out)["id"]
        assert only_remote(out)["method"] == "subscriptions/listen"
    out = translator.from_remote(stream_broke(listen_id, "the stream broke"))
    assert out.to_remote == ()
    assert out.to_local == ()  # the client never asked for it: nothing to answer
    assert out.warnings
    assert translator.has_given_up_listening
    reopened = only_remote(translator.reopen_listen())
    assert reopened["method"] == "subscriptions/listen"
    assert not translator.has_given_up_listening


def test_a_notification_between_ends_keeps_the_listen_alive() -> None:
    translator, opened = legacy_session()
    listen_id = only_remote(opened)["id"]
    for _ in range(MAX_REOPENS * 2):
        translator.from_remote(on_stream(listen_id, "notifications/tools/list_changed"))
        listen_id = only_remote(translator.from_remote(result(listen_id, {})))["id"]


def test_a_remote_without_listen_is_not_asked_again() -> None:
    translator, opened = legacy_session()
    listen_id = only_remote(opened)["id"]
    out = translator.from_remote(error(listen_id, -32601, "Method not found"))
    assert out.to_remote == ()
    assert "does not serve subscriptions/listen" in out.warnings[0]
    assert translator.has_given_up_listening
    # A later subscribe is still answered; the stream stays given up.
    out = translator.from_local(request(3, "resources/subscribe", {"uri": "file:///a"}))
    assert out == Outgoing(to_local=(result(3, {}),))


def test_notifications_of_a_modern_clients_own_listen_pass_through() -> None:
    translator, _ = legacy_session()
    theirs = on_stream("7", "notifications/tools/list_changed")
    assert only_local(translator.from_remote(theirs)) == theirs
