"""SignInRounds: a sign-in handed to a 2026-07-28 client as one Multi Round-Trip Request
round, and the client's retry that answers it. Pure: messages in, what to do out; the login
and the waiting are the caller's (engine/prompt_sign_in.py, engine/front_channel.py).

MCP 2026-07-28, Multi Round-Trip Requests (basic/patterns/mrtr): a server may answer
`tools/call`, `resources/read` or `prompts/get` with `resultType: "input_required"`, its
`inputRequests` and an opaque `requestState`; the client fulfils the requests and sends the
same request again, under a new id, with `inputResponses` and the `requestState`. The bridge
plays that server for the one thing the remote cannot ask for itself: the user has to sign
in, in the browser (client/elicitation, URL mode).

Theory of operation

    rounds = SignInRounds()
    step = rounds.from_local(request)          # Forward(message) or Answer(reply)
    rounds.answers_early(request_id)           # its 401 is answered once the URL is known
    reply = rounds.sign_in_reply(request_id, url, text)   # input_required, or None

- A request *may* get a sign-in round when it is one of those three methods, its `_meta`
  names 2026-07-28 and its client capabilities declare `elicitation.url` (capabilities are
  per request in 2026-07-28; nothing is inferred from earlier requests).
- Its sign-in error becomes `input_required` with one URL-mode elicitation and a
  `requestState` the bridge made up: `STATE_PREFIX` and 256 random bits. The state lives in
  this session only (so it is bound to the session and its one server), for the method and
  name it was given for, and its first retry spends it.
- A retry naming one of our states: `accept` forwards the request without our
  `inputResponses`/`requestState` (with the remote's own, when the first request carried
  them). The retry's client shows sign-in URLs too, and holds the one of its round
  (`url_held`): it waits for that login, its user having just said they went to the page,
  and is handed any other login's URL at once, as a new round (after a refusal, the next
  login's). `decline` or `cancel` is answered here and nothing is forwarded. A state with
  our prefix that we do not hold (spent, forged, or from an earlier session) is answered
  with an error. Any other state is the remote's own MRTR: it passes untouched.
"""

from __future__ import annotations

import collections
import secrets
import uuid
from collections.abc import Callable
from typing import NamedTuple

from mcp_bridge import jsonrpc
from mcp_bridge.bridge.mrtr import MRTR_METHODS
from mcp_bridge.engine.cached_front import drop_key
from mcp_bridge.jsonrpc import JsonObject, RequestId
from mcp_bridge.protocol import (
    META_CLIENT_CAPABILITIES,
    META_PROTOCOL_VERSION,
    MODERN_VERSIONS,
    NAME_PARAM_OF_METHOD,
)

__all__ = [
    "INPUT_KEY",
    "STATE_PREFIX",
    "Answer",
    "Forward",
    "SignInRounds",
    "declares_url_elicitation",
    "elicit_action",
]

STATE_PREFIX = "mcp-bridge-sign-in."
INPUT_KEY = "mcp-bridge-sign-in"  # the one key of our `inputRequests`
_MRTR_FIELDS = ("inputResponses", "requestState")
_ACTIONS = frozenset({"accept", "decline", "cancel"})
# Bounds on what a client that never retries (or never finishes) leaves behind.
_STATES_HELD = 256
_REQUESTS_REMEMBERED = 1024


def _random_state() -> str:
    return secrets.token_urlsafe(32)


class Forward(NamedTuple):
    """Pass this message on to the remote (the request itself, or its retry made plain)."""

    message: JsonObject


class Answer(NamedTuple):
    """Answer the client with this reply; nothing goes to the remote."""

    reply: JsonObject


class _Round(NamedTuple):
    """What a request that may get a sign-in round was: enough to check and rebuild its retry."""

    method: str
    name: object  # its `name` (tools, prompts) or `uri` (resources)
    carried: JsonObject  # the remote's own inputResponses/requestState it carried, if any


class _Eligible(NamedTuple):
    round: _Round
    holds: str | None  # the sign-in URL its client holds already (a retry: its round's)


class SignInRounds:
    """The sign-in rounds of one local session (see the module docstring).
    `mint`: the random part of each requestState (tests pass their own)."""

    def __init__(self, mint: Callable[[], str] = _random_state) -> None:
        self._mint = mint
        # Each state handed out: the request it was given for, and the URL of its round.
        self._held: collections.OrderedDict[str, _Eligible] = collections.OrderedDict()
        self._eligible: collections.OrderedDict[str, _Eligible] = collections.OrderedDict()

    def from_local(self, message: JsonObject) -> Forward | Answer:
        method, request_id = message.get("method"), message.get("id")
        is_mrtr = isinstance(method, str) and method in MRTR_METHODS  # a list is unhashable
        if not is_mrtr or not jsonrpc.is_request_id(request_id):
            return Forward(message)
        assert isinstance(method, str)
        assert isinstance(request_id, str | int)
        params = message.get("params")
        params = params if isinstance(params, dict) else {}
        key = drop_key(request_id)
        self._eligible.pop(key, None)  # an id used again is another request
        state = params.get("requestState")
        if isinstance(state, str) and state.startswith(STATE_PREFIX):
            return self._on_retry(message, request_id, params, state)
        if declares_url_elicitation(params):
            carried = {name: params[name] for name in _MRTR_FIELDS if name in params}
            self._remember(key, _Eligible(_round_of(method, params, carried), holds=None))
        return Forward(message)

    def answers_early(self, request_id: RequestId) -> bool:
        """True when a sign-in this request meets should be handed to the client as soon as
        its URL is known (one `url_held` names excepted), rather than after the login wait."""
        return drop_key(request_id) in self._eligible

    def url_held(self, request_id: RequestId) -> str | None:
        """The sign-in URL this request's client already holds: the one of the round that
        this request, a retry, answers. None for a first request (and any other)."""
        eligible = self._eligible.get(drop_key(request_id))
        return None if eligible is None else eligible.holds

    def sign_in_reply(self, request_id: RequestId, url: str, text: str) -> JsonObject | None:
        """The `input_required` answer to a request that met a sign-in at `url`, or None
        when this request cannot be answered that way."""
        eligible = self._eligible.pop(drop_key(request_id), None)
        if eligible is None:
            return None
        state = STATE_PREFIX + self._mint()
        self._held[state] = _Eligible(eligible.round, holds=url)
        while len(self._held) > _STATES_HELD:
            self._held.popitem(last=False)
        elicitation: JsonObject = {
            "mode": "url",
            "url": url,
            "message": text,
            # Not in the 2026-07-28 schema (the outcome is learnt by retrying); clients that
            # share their 2025-11-25 URL-mode handling need one, and others ignore it.
            "elicitationId": str(uuid.uuid4()),
        }
        result: JsonObject = {
            "resultType": "input_required",
            "inputRequests": {INPUT_KEY: {"method": "elicitation/create", "params": elicitation}},
            "requestState": state,
        }
        return jsonrpc.result_response(request_id, result)

    def _on_retry(
        self, message: JsonObject, request_id: RequestId, params: JsonObject, state: str
    ) -> Forward | Answer:
        method = message["method"]
        held = self._held.pop(state, None)
        if held is None:
            return Answer(
                jsonrpc.error_response(
                    request_id,
                    jsonrpc.INVALID_PARAMS,
                    "The requestState names a sign-in this bridge is not waiting for (already "
                    "answered, or from an earlier session); send the request again without "
                    "requestState and inputResponses",
                )
            )
        if held.round != _round_of(method, params, held.round.carried):
            return Answer(
                jsonrpc.error_response(
                    request_id,
                    jsonrpc.INVALID_PARAMS,
                    f"The requestState was given for another request than this {method}; "
                    "send the request again without requestState and inputResponses",
                )
            )
        action = elicit_action(params.get("inputResponses"))
        if action is None:
            return Answer(
                jsonrpc.error_response(
                    request_id,
                    jsonrpc.INVALID_PARAMS,
                    f"The retry carries no answer to the sign-in (inputResponses.{INPUT_KEY} "
                    "with an action); answer it, or send the request again without "
                    "requestState",
                )
            )
        if action != "accept":
            return Answer(_declined(request_id, method, action))
        plain = {k: v for k, v in params.items() if k not in _MRTR_FIELDS}
        retry = {**message, "params": {**plain, **held.round.carried}}
        self._remember(drop_key(request_id), held)
        return Forward(retry)

    def _remember(self, key: str, eligible: _Eligible) -> None:
        self._eligible[key] = eligible
        while len(self._eligible) > _REQUESTS_REMEMBERED:
            self._eligible.popitem(last=False)


def declares_url_elicitation(params: JsonObject) -> bool:
    """The request's `_meta` says 2026-07-28 and declares URL-mode elicitation."""
    meta = params.get("_meta")
    if not isinstance(meta, dict) or meta.get(META_PROTOCOL_VERSION) not in MODERN_VERSIONS:
        return False
    capabilities = meta.get(META_CLIENT_CAPABILITIES)
    elicitation = capabilities.get("elicitation") if isinstance(capabilities, dict) else None
    return isinstance(elicitation, dict) and isinstance(elicitation.get("url"), dict)


def elicit_action(responses: object) -> str | None:
    """The `action` of the client's ElicitResult for our input request, None when the
    retry carries none (or one that is not an ElicitResult)."""
    answer = responses.get(INPUT_KEY) if isinstance(responses, dict) else None
    action = answer.get("action") if isinstance(answer, dict) else None
    return action if isinstance(action, str) and action in _ACTIONS else None


def _round_of(method: str, params: JsonObject, carried: JsonObject) -> _Round:
    name_param = NAME_PARAM_OF_METHOD.get(method)
    return _Round(method, params.get(name_param) if name_param else None, carried)


def _declined(request_id: RequestId, method: str, action: str) -> JsonObject:
    """The answer to a retry whose user declined or dismissed the sign-in: a tool result for
    a tool call (hosts show it in the conversation), an error for the others."""
    what = "declined" if action == "decline" else "dismissed"
    text = (
        f"The sign-in was {what}, so the {method} was not sent to the server; call it "
        "again to be asked once more"
    )
    if method == "tools/call":
        content = [{"type": "text", "text": text}]
        result: JsonObject = {"resultType": "complete", "content": content, "isError": True}
        return jsonrpc.result_response(request_id, result)
    return jsonrpc.error_response(request_id, jsonrpc.REMOTE_UNAVAILABLE, text)
