"""JSON-RPC batches from old clients (2025-03-26 allowed them; later revisions removed them).

The bridge unpacks a batch into single messages and answers with one array once every
request in it has its response, as JSON-RPC 2.0 §6 asks. Pure bookkeeping, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mcp_bridge.jsonrpc import JsonObject, RequestId, is_request_id


@dataclass(slots=True)
class _OpenBatch:
    waiting_for: set[RequestId]
    responses: list[JsonObject] = field(default_factory=list)


@dataclass(slots=True)
class BatchCollector:
    """Holds back responses that belong to an open batch until the batch is complete."""

    _batch_of: dict[RequestId, _OpenBatch] = field(default_factory=dict)

    def open(
        self, request_ids: list[RequestId], early: list[JsonObject]
    ) -> list[JsonObject] | None:
        """Start a batch waiting for `request_ids`; `early` are replies already known (errors
        for invalid members). Returns the whole reply now if nothing is left to wait for."""
        if not request_ids:
            return early or None
        batch = _OpenBatch(waiting_for=set(request_ids), responses=list(early))
        for request_id in request_ids:
            self._batch_of[request_id] = batch
        return None

    def offer(self, response: JsonObject) -> tuple[bool, list[JsonObject] | None]:
        """(held, completed batch). `held` is False when the response is not part of a batch."""
        request_id = response.get("id")
        if "method" in response:  # a request of the remote's own, whatever its id
            return False, None
        if not is_request_id(request_id) or request_id not in self._batch_of:
            return False, None
        batch = self._batch_of.pop(request_id)
        batch.responses.append(response)
        batch.waiting_for.discard(request_id)
        return True, (batch.responses if not batch.waiting_for else None)

    def abandon(self, request_id: object) -> list[JsonObject] | None:
        """The client cancelled a request of a batch: stop waiting for its response (a late
        one goes out on its own). Returns the batch if that completed it."""
        if not is_request_id(request_id) or request_id not in self._batch_of:
            return None
        batch = self._batch_of.pop(request_id)
        batch.waiting_for.discard(request_id)
        return batch.responses if not batch.waiting_for and batch.responses else None
