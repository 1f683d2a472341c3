"""One `subscriptions/listen` stream standing in for a legacy client's notifications.

A legacy client expects `notifications/*/list_changed` whenever the server advertised
`listChanged`, and `notifications/resources/updated` for what it `resources/subscribe`d.
A 2026-07-28 remote sends those only on a `subscriptions/listen` stream the client opened with a
filter (MCP 2026-07-28, Subscriptions). The bridge keeps one such stream with the union filter,
re-opens it when the filter changes or the stream ends, and strips the `subscriptionId` from
what arrives on it. Pure state and rules: era.py mints ids and builds the requests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Self

from mcp_bridge.jsonrpc import INVALID_PARAMS, METHOD_NOT_FOUND, JsonObject, RequestId
from mcp_bridge.protocol import META_SUBSCRIPTION_ID

# A stream that ends this many times with no notification in between is given up until
# the session calls `reopen_listen()`: it owns the clock, so it owns the backoff. An
# acknowledgement alone does not count as progress, or a server that acknowledges and
# hangs up at once would be re-opened in a tight loop.
MAX_REOPENS = 3

# Filter field -> the server capability that must advertise it (2026-07-28 schema).
_LIST_CHANGED_FIELDS = {
    "toolsListChanged": "tools",
    "promptsListChanged": "prompts",
    "resourcesListChanged": "resources",
}


@dataclass(frozen=True, slots=True)
class SubscriptionFilter:
    """`params.notifications` of `subscriptions/listen` (and of its acknowledgement)."""

    list_changed: frozenset[str] = frozenset()  # filter fields, e.g. "toolsListChanged"
    resource_subscriptions: frozenset[str] = frozenset()  # URIs

    @property
    def is_empty(self) -> bool:
        return not self.list_changed and not self.resource_subscriptions

    def to_json(self) -> JsonObject:
        notifications: JsonObject = {name: True for name in sorted(self.list_changed)}
        if self.resource_subscriptions:
            notifications["resourceSubscriptions"] = sorted(self.resource_subscriptions)
        return notifications

    @classmethod
    def from_json(cls, notifications: object) -> Self:
        if not isinstance(notifications, dict):
            return cls()
        uris = notifications.get("resourceSubscriptions")
        return cls(
            frozenset(name for name in _LIST_CHANGED_FIELDS if notifications.get(name) is True),
            frozenset(u for u in uris if isinstance(u, str))
            if isinstance(uris, list)
            else frozenset(),
        )

    def describe_missing(self, acknowledged: SubscriptionFilter) -> str | None:
        """What the server left out of its acknowledgement, or None if it agreed to all."""
        missing = sorted(self.list_changed - acknowledged.list_changed)
        missing += [
            f"updates of {uri}"
            for uri in sorted(self.resource_subscriptions - acknowledged.resource_subscriptions)
        ]
        return ", ".join(missing) or None


def advertised_list_changed(capabilities: object) -> frozenset[str]:
    """The list-changed notifications a legacy client expects from these capabilities."""
    if not isinstance(capabilities, dict):
        return frozenset()
    return frozenset(
        field_name
        for field_name, capability in _LIST_CHANGED_FIELDS.items()
        if isinstance(capabilities.get(capability), dict)
        and capabilities[capability].get("listChanged") is True
    )


def supports_resource_subscriptions(capabilities: object) -> bool:
    resources = capabilities.get("resources") if isinstance(capabilities, dict) else None
    return isinstance(resources, dict) and resources.get("subscribe") is True


@dataclass(frozen=True, slots=True)
class ListenPlan:
    """What to do to make the open stream match the wanted filter."""

    close: RequestId | None = None  # cancel this listen request
    open: SubscriptionFilter | None = None  # then open one with this filter


@dataclass(slots=True)
class ListenState:
    """The wanted filter, the open stream, and how often it has ended with nothing sent."""

    list_changed: frozenset[str] = frozenset()
    resource_subscriptions: set[str] = field(default_factory=set)
    open_id: RequestId | None = None
    open_filter: SubscriptionFilter | None = None
    idle_ends: int = 0  # ends in a row with no notification delivered in between
    is_unsupported: bool = False  # the remote answered -32601: stop asking

    @property
    def wanted(self) -> SubscriptionFilter:
        return SubscriptionFilter(self.list_changed, frozenset(self.resource_subscriptions))

    def plan(self) -> ListenPlan:
        """Close and/or open so the stream carries `wanted`; call after every change."""
        wanted = self.wanted
        if wanted == self.open_filter:
            return ListenPlan()
        close = self.open_id
        may_open = not self.is_unsupported and self.idle_ends < MAX_REOPENS
        return ListenPlan(close=close, open=wanted if may_open and not wanted.is_empty else None)

    def opened(self, request_id: RequestId, wanted: SubscriptionFilter) -> None:
        self.open_id, self.open_filter = request_id, wanted

    def closed(self) -> None:
        self.open_id, self.open_filter = None, None

    def ended(self, *, is_unsupported: bool = False) -> None:
        """The open stream ended on the remote's side (a response, an error, a failure)."""
        self.idle_ends += 1
        self.is_unsupported = self.is_unsupported or is_unsupported
        self.closed()

    def delivered(self) -> None:
        """A notification arrived on the open stream: it works, so ends start over."""
        self.idle_ends = 0

    def reset(self) -> None:
        """The session's backoff has passed: try again from scratch."""
        self.idle_ends, self.is_unsupported = 0, False

    @property
    def has_given_up(self) -> bool:
        return self.open_id is None and (self.is_unsupported or self.idle_ends >= MAX_REOPENS)

    def why_stopped(self) -> str | None:
        """Why no stream is open any more (for the log), or None while it still runs."""
        if self.is_unsupported:
            return (
                "the remote does not serve subscriptions/listen: no list_changed or "
                "resource update notifications will reach the client"
            )
        if self.has_given_up:
            return "the subscriptions/listen stream keeps ending; paused"
        return None


def change_subscription(
    state: ListenState, method: str, params: object, capabilities: object
) -> tuple[int, str] | None:
    """Apply a legacy `resources/subscribe` or `resources/unsubscribe` to the wanted filter.
    Returns the JSON-RPC error (code, message) to answer with when it cannot be served."""
    uri = params.get("uri") if isinstance(params, dict) else None
    if not isinstance(uri, str):
        return INVALID_PARAMS, f"{method} needs a uri"
    if not supports_resource_subscriptions(capabilities):
        return METHOD_NOT_FOUND, "The remote server does not offer resource subscriptions"
    if method == "resources/subscribe":
        state.resource_subscriptions.add(uri)
    else:
        state.resource_subscriptions.discard(uri)
    return None


def is_method_not_found(response: JsonObject) -> bool:
    """The remote answered the listen request with -32601: it has no such method."""
    error = response.get("error")
    return isinstance(error, dict) and error.get("code") == METHOD_NOT_FOUND


def subscription_id_of(message: JsonObject) -> object:
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return meta.get(META_SUBSCRIPTION_ID) if isinstance(meta, dict) else None


def without_subscription_id(notification: JsonObject) -> JsonObject:
    """The legacy form of a notification that arrived on a listen stream: the same method
    and params (the 2026 names are the legacy ones), `_meta.subscriptionId` removed."""
    params = dict(notification.get("params") or {})
    meta = params.pop("_meta", None)
    meta = (
        {k: v for k, v in meta.items() if k != META_SUBSCRIPTION_ID}
        if isinstance(meta, dict)
        else {}
    )
    if meta:
        params["_meta"] = meta
    legacy: JsonObject = {**notification}
    if params:
        legacy["params"] = params
    else:
        legacy.pop("params", None)
    return legacy


@dataclass(frozen=True, slots=True)
class Received:
    """What a notification from the open stream becomes."""

    to_local: JsonObject | None = None
    warning: str | None = None


def receive(state: ListenState, notification: JsonObject) -> Received:
    """Handle a notification tagged with the open stream's id (the caller checked that)."""
    if notification.get("method") == "notifications/subscriptions/acknowledged":
        params = notification.get("params")
        agreed = SubscriptionFilter.from_json(
            params.get("notifications") if isinstance(params, dict) else None
        )
        # Subscriptions: the client SHOULD compare; a legacy client has no way to hear of it, so
        # note it.
        missing = (state.open_filter or SubscriptionFilter()).describe_missing(agreed)
        return Received(warning=f"the remote will not send {missing}" if missing else None)
    state.delivered()
    legacy = without_subscription_id(notification)
    if legacy.get("method") == "notifications/resources/updated":
        params = legacy.get("params")
        uri = params.get("uri") if isinstance(params, dict) else None
        if uri not in state.resource_subscriptions:
            return Received()  # unsubscribed while it was on its way
    return Received(to_local=legacy)
