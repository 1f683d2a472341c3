"""Which requests a transport still owes the client an answer, so that each gets exactly one
(issue 8): the remote's first response to it, or the transport's own error, never both and
never two. A remote can send a second response, one to an id the client never used, or an
id-less error; all of them pass through here before anything reaches the client. Pure.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mcp_bridge import jsonrpc
from mcp_bridge.jsonrpc import JsonObject, RequestId
from mcp_bridge.remote.response_body import RequestFailed

log = logging.getLogger(__name__)


@dataclass(slots=True)
class AwaitedAnswers:
    """The ids of the requests sent and not yet answered. Keys are the ids as the client
    wrote them: `is_request_id` keeps a remote's `true` or `1.0` from matching request 1."""

    _awaited: set[RequestId] = field(default_factory=set)

    def expect(self, request_id: RequestId) -> None:
        self._awaited.add(request_id)

    def forget(self, request_id: RequestId) -> None:
        """The request was cancelled or its exchange ended: nothing more goes to the client."""
        self._awaited.discard(request_id)

    def is_awaited(self, request_id: object) -> bool:
        return jsonrpc.is_request_id(request_id) and request_id in self._awaited

    def claim(self, request_id: object) -> bool:
        """Take the one right to answer `request_id`: True once, while it is awaited."""
        if not self.is_awaited(request_id):
            return False
        assert isinstance(request_id, str | int)
        self._awaited.discard(request_id)
        return True

    def claim_all(self) -> list[RequestId]:
        claimed, self._awaited = list(self._awaited), set()
        return claimed

    def failure(self, request_id: RequestId, failure: RequestFailed) -> JsonObject | None:
        """The error response for `request_id`, or None when it was answered already."""
        return failure.response_to(request_id) if self.claim(request_id) else None

    def answer_in(
        self, url: str, message: JsonObject, exchange: RequestId | None = None
    ) -> JsonObject | None:
        """For a message from the remote without a `method`: the answer to deliver, or None
        to drop it. An id-less error that came back on `exchange`'s own stream (a server
        that could not read the id) answers that request."""
        request_id = message.get("id")
        if request_id is None and exchange is not None and "error" in message:
            request_id, message = exchange, {**message, "id": exchange}
        if ("result" in message or "error" in message) and self.claim(request_id):
            return message
        log.warning(
            "dropping a message from %s: not the first response to a request awaiting one "
            "(id %.40r)",
            url,
            request_id,
        )
        return None
