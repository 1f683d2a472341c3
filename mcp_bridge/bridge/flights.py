"""The requests a translator has under way upstream, by the id each went out with.

A local request keeps its own id upstream when it can (the session keeps local ids unique
among themselves); retries and the bridge's own requests get minted ids, which start with
`mcp-bridge:` so they cannot meet a client's. A client id that does start so, or that is
already under way, is remapped too. Pure bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcp_bridge.bridge.listen import SubscriptionFilter
from mcp_bridge.jsonrpc import REMOTE_UNAVAILABLE, JsonObject, RequestId

MINTED_ID_PREFIX = "mcp-bridge:"
# 2026-07-28 (changelog, item 9): a broken response stream loses the request and the client
# MUST issue it again under a new id. Done once, for methods that change nothing on the
# server; a tools/call may have had its effect already, so the client hears of the failure
# and decides.
REISSUABLE_METHODS = frozenset(
    {
        "server/discover",
        "completion/complete",
        "prompts/get",
        "prompts/list",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "tools/list",
    }
)


@dataclass(slots=True)
class Forwarded:
    """A local request under way upstream (first try, MRTR retry or header retry)."""

    local_id: RequestId
    method: str
    params: JsonObject  # the first try's params: the base of every MRTR retry
    is_translated: bool  # False: a 2026-07-28 client's own request, relayed untouched
    rounds: int = 0  # input_required rounds already played for it
    header_retry_used: bool = False
    is_reissue: bool = False  # already sent again after its stream broke
    sent_params: JsonObject = field(default_factory=dict)  # this try's, for a header retry

    def may_reissue(self, error: JsonObject) -> bool:
        """Send it again under a new id after `error`: its stream broke, it is read-only,
        and it has not been reissued yet."""
        return (
            error.get("code") == REMOTE_UNAVAILABLE
            and self.method in REISSUABLE_METHODS
            and not self.is_reissue
        )


@dataclass(slots=True)
class ToolsRefresh:
    """A `tools/list` the bridge sent after -32020 HeaderMismatch, before retrying `call`."""

    call: Forwarded
    mismatch: JsonObject  # the remote's error, for the client if the retry cannot happen
    pages: int = 1


@dataclass(slots=True)
class Listen:
    """The bridge's own `subscriptions/listen`."""

    wanted: SubscriptionFilter


Flight = Forwarded | ToolsRefresh | Listen


def is_minted(request_id: object) -> bool:
    return isinstance(request_id, str) and request_id.startswith(MINTED_ID_PREFIX)


def _local_id_of(flight: Flight) -> RequestId | None:
    if isinstance(flight, Forwarded):
        return flight.local_id
    if isinstance(flight, ToolsRefresh):
        return flight.call.local_id
    return None


@dataclass(slots=True)
class Flights:
    _by_remote_id: dict[RequestId, Flight] = field(default_factory=dict)
    _remote_id_of: dict[RequestId, RequestId] = field(default_factory=dict)  # local -> remote
    _minted: int = 0

    def mint(self, purpose: str) -> str:
        self._minted += 1
        return f"{MINTED_ID_PREFIX}{purpose}-{self._minted}"

    def start(self, flight: Flight, *, fresh_id: bool = False) -> RequestId:
        """Record `flight`; returns the id to send it under."""
        local_id = _local_id_of(flight)
        keeps_id = (
            isinstance(flight, Forwarded)
            and not fresh_id
            and not is_minted(local_id)
            and local_id not in self._by_remote_id
        )
        remote_id = local_id if keeps_id and local_id is not None else self.mint(_purpose(flight))
        self._by_remote_id[remote_id] = flight
        if local_id is not None:
            self._remote_id_of[local_id] = remote_id
        return remote_id

    def finish(self, remote_id: RequestId) -> Flight | None:
        """The flight a response answers, now over; None for an unknown or cancelled id."""
        flight = self._by_remote_id.pop(remote_id, None)
        if flight is not None:
            local_id = _local_id_of(flight)
            if local_id is not None and self._remote_id_of.get(local_id) == remote_id:
                del self._remote_id_of[local_id]
        return flight

    def cancel(self, local_id: RequestId) -> RequestId | None:
        """Forget the flight carrying this local request; returns the id to cancel upstream."""
        remote_id = self._remote_id_of.pop(local_id, None)
        if remote_id is not None:
            del self._by_remote_id[remote_id]
        return remote_id

    def discard(self, remote_id: RequestId) -> None:
        """Forget one of the bridge's own flights (a listen being replaced)."""
        self._by_remote_id.pop(remote_id, None)


def _purpose(flight: Flight) -> str:
    if isinstance(flight, Listen):
        return "listen"
    return "tools" if isinstance(flight, ToolsRefresh) else "request"
