"""MRTR for a legacy client: a 2026-07-28 `input_required` result played as legacy requests.

MCP 2026-07-28, Multi Round-Trip Requests (patterns/mrtr.mdx): the remote answers `tools/call`,
`resources/read` or `prompts/get` with `resultType: "input_required"`, `inputRequests` {key:
request} and an opaque `requestState`. A legacy client cannot read that, but it can answer the
same requests sent the legacy way (server -> client `elicitation/create`,
`sampling/createMessage`, `roots/list`). This module parses the result, checks each request
against what the client declared, and collects the answers for the retry. Pure; era.py does the
routing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Self

from mcp_bridge.jsonrpc import (
    INTERNAL_ERROR,
    MISSING_REQUIRED_CLIENT_CAPABILITY,
    JsonObject,
    RequestId,
    notification,
)

# The only methods whose results may be `input_required` (MRTR).
MRTR_METHODS = frozenset({"tools/call", "resources/read", "prompts/get"})
# A server that keeps asking is looping; the client's request fails rather than spin.
MAX_ROUNDS = 10


class InvalidInputRequired(ValueError):
    """An `input_required` result that breaks the schema; the message says how."""


@dataclass(frozen=True, slots=True)
class InputRequest:
    """One entry of `inputRequests`: a legacy server -> client request in all but name."""

    key: str
    method: str
    params: JsonObject


@dataclass(frozen=True, slots=True)
class InputRequired:
    """A parsed `InputRequiredResult`."""

    input_requests: tuple[InputRequest, ...]
    request_state: str | None  # echoed byte for byte, never read (MRTR MUST)

    @classmethod
    def from_result(cls, result: JsonObject) -> Self:
        requests = result.get("inputRequests")
        state = result.get("requestState")
        if requests is None:
            requests = {}
        if not isinstance(requests, dict):
            raise InvalidInputRequired("`inputRequests` is not an object")
        if state is not None and not isinstance(state, str):
            raise InvalidInputRequired("`requestState` is not a string")
        if not requests and state is None:
            raise InvalidInputRequired("it has neither `inputRequests` nor `requestState`")
        parsed = []
        for key, request in requests.items():
            if not isinstance(request, dict) or not isinstance(request.get("method"), str):
                raise InvalidInputRequired(f"input request {key!r} has no method")
            params = request.get("params")
            parsed.append(
                InputRequest(key, request["method"], params if isinstance(params, dict) else {})
            )
        return cls(tuple(parsed), state)


def missing_capability(request: InputRequest, capabilities: JsonObject) -> str | None:
    """The capability the local client would need to answer `request` but did not declare
    (a short description for an error message), or None when it can answer."""
    if request.method == "elicitation/create":
        elicitation = capabilities.get("elicitation")
        mode = request.params.get("mode", "form")
        if not isinstance(elicitation, dict):
            return f"elicitation ({mode} mode)"
        if mode == "url":
            return None if "url" in elicitation else "URL-mode elicitation"
        # A bare `elicitation: {}` predates modes and means form (2025-11-25 client/elicitation).
        return None if "form" in elicitation or "url" not in elicitation else "form elicitation"
    if request.method == "sampling/createMessage":
        sampling = capabilities.get("sampling")
        if not isinstance(sampling, dict):
            return "sampling"
        wants_tools = "tools" in request.params or "toolChoice" in request.params
        return "sampling with tools" if wants_tools and "tools" not in sampling else None
    if request.method == "roots/list":
        return None if isinstance(capabilities.get("roots"), dict) else "roots"
    return f"the request {request.method!r}, which the bridge cannot relay"


def legacy_request(request_id: RequestId, request: InputRequest) -> JsonObject:
    """`request` as a legacy server -> client JSON-RPC request with the bridge's id."""
    params = request.params
    if request.method == "elicitation/create" and params.get("mode") == "url":
        # 2025-11-25 clients require `elicitationId` in URL mode; 2026-07-28 removed it
        # (the outcome is learnt by retrying), so any unique value serves.
        params = {"elicitationId": str(request_id), **params}
    return {"jsonrpc": "2.0", "id": request_id, "method": request.method, "params": params}


@dataclass(slots=True)
class PendingRound:
    """A local request parked while the local client answers one round of input requests."""

    local_id: RequestId
    method: str
    params: JsonObject  # as sent upstream the first time: the retry's base (MRTR)
    rounds: int  # input_required results seen so far for this request
    request_state: str | None
    waiting_for: dict[RequestId, str] = field(default_factory=dict)  # bridge id -> key
    responses: JsonObject = field(default_factory=dict)

    def answer(self, request_id: RequestId, result: object) -> bool:
        """Record the client's result for one input request; True when all are in."""
        key = self.waiting_for.pop(request_id)
        self.responses[key] = result
        return not self.waiting_for


def retry_params(base: JsonObject, responses: JsonObject, request_state: str | None) -> JsonObject:
    """The retry's params: the original ones plus `inputResponses` and, only when the
    server sent one, `requestState` (MRTR: never invent one)."""
    params = {k: v for k, v in base.items() if k not in ("inputResponses", "requestState")}
    if responses:
        params["inputResponses"] = responses
    if request_state is not None:
        params["requestState"] = request_state
    return params


@dataclass(frozen=True, slots=True)
class RoundRefused:
    """Why an `input_required` result cannot be played to this client: the error for it."""

    code: int
    message: str


def check_round(
    method: str, rounds: int, result: JsonObject, capabilities: JsonObject
) -> InputRequired | RoundRefused:
    """Parse an `input_required` result for a request that has already had `rounds` of
    them, and check that the local client can answer every input request."""
    try:
        required = InputRequired.from_result(result)
    except InvalidInputRequired as exc:
        return RoundRefused(
            INTERNAL_ERROR,
            f"The remote server asked for input in an invalid way ({exc}); tell the server's owner",
        )
    if rounds >= MAX_ROUNDS:
        return RoundRefused(
            INTERNAL_ERROR,
            f"The remote server asked for input more than {MAX_ROUNDS} times for one "
            f"{method}, so the bridge stopped; retry, or tell the server's owner",
        )
    for request in required.input_requests:
        missing = missing_capability(request, capabilities)
        if missing is not None:
            # The remote must not ask for what was not declared (MRTR), so this is a server
            # bug or a capability the bridge cannot relay; either way the client cannot help.
            return RoundRefused(
                MISSING_REQUIRED_CLIENT_CAPABILITY,
                f"The remote server needs {missing} to finish {method}, and this client "
                "does not support it; use a client that does",
            )
    return required


@dataclass(frozen=True, slots=True)
class Answered:
    """What one answer from the local client completed, if anything."""

    pending: PendingRound
    is_complete: bool  # every input request of the round is answered: retry now
    error: JsonObject | None = None  # the client answered with this error: fail the request
    cancel_local: tuple[JsonObject, ...] = ()  # notifications/cancelled for the rest


@dataclass(slots=True)
class ParkedRequests:
    """Local requests parked on input requests, findable by either id."""

    _by_local_id: dict[RequestId, PendingRound] = field(default_factory=dict)
    _local_id_of: dict[RequestId, RequestId] = field(default_factory=dict)  # asked -> local

    def __contains__(self, local_id: RequestId) -> bool:
        return local_id in self._by_local_id

    def park(
        self, pending: PendingRound, requests: tuple[InputRequest, ...], mint: Callable[[], str]
    ) -> list[JsonObject]:
        """Park `pending`; returns the legacy requests to send the local client."""
        self._by_local_id[pending.local_id] = pending
        asked: list[JsonObject] = []
        for request in requests:
            asked_id = mint()
            pending.waiting_for[asked_id] = request.key
            self._local_id_of[asked_id] = pending.local_id
            asked.append(legacy_request(asked_id, request))
        return asked

    def answer(self, response: JsonObject) -> Answered | None:
        """Take the local client's response to an input request; None if nobody waits for it
        (an unknown id, or a request since cancelled)."""
        asked_id = response["id"]
        local_id = self._local_id_of.pop(asked_id, None)
        if local_id is None:
            return None
        pending = self._by_local_id[local_id]
        error = response.get("error")
        if error is not None:
            del pending.waiting_for[asked_id]
            cancels = self.drop(local_id, reason="another input request failed")
            return Answered(pending, False, error if isinstance(error, dict) else {}, cancels)
        if pending.answer(asked_id, response.get("result")):
            del self._by_local_id[local_id]
            return Answered(pending, True)
        return Answered(pending, False)

    def drop(self, local_id: RequestId, *, reason: str) -> tuple[JsonObject, ...]:
        """Forget a parked request; returns `notifications/cancelled` for each input request
        the client is still answering, so it can close the dialog (2025-11-25 cancellation)."""
        pending = self._by_local_id.pop(local_id)
        for asked_id in pending.waiting_for:
            del self._local_id_of[asked_id]
        return tuple(
            notification("notifications/cancelled", {"requestId": asked_id, "reason": reason})
            for asked_id in pending.waiting_for
        )


def failed_input_message(method: str, error: JsonObject) -> str:
    return (
        f"The server needed input to finish {method}, and the client answered with an "
        f"error: {error.get('message', 'no message')}"
    )
