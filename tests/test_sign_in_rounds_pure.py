"""SignInRounds without sockets: which requests get a sign-in round, what the round looks
like, and how the retry that answers it is checked, made plain, or answered here. The
parser is fuzzed: any message the client may send is forwarded or answered, never raises,
and never carries the bridge's state upstream. And the FrontChannel around it."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from mcp_bridge import jsonrpc
from mcp_bridge.engine.answer_book import AnswerBook
from mcp_bridge.engine.answer_cache import answer_key
from mcp_bridge.engine.cached_front import CachedFront
from mcp_bridge.engine.front_channel import FrontChannel
from mcp_bridge.engine.sign_in_rounds import (
    INPUT_KEY,
    STATE_PREFIX,
    Answer,
    Forward,
    SignInRounds,
    declares_url_elicitation,
    elicit_action,
)
from mcp_bridge.jsonrpc import JsonObject
from tests.fixtures.mcp_servers import modern_meta
from tests.fixtures.memory_client import MemoryClient, passed_on

URL = "https://as.example/authorize?client_id=c"
WITH_URL: JsonObject = {"elicitation": {"url": {}}}


def call(request_id: int, capabilities: JsonObject = WITH_URL, **extra: Any) -> JsonObject:
    meta = {**modern_meta(), "io.modelcontextprotocol/clientCapabilities": capabilities}
    params = {"name": "echo", "arguments": {"text": "hi"}, "_meta": meta, **extra}
    return jsonrpc.request(request_id, "tools/call", params)


def counting_mint() -> SignInRounds:
    counter = itertools.count()
    return SignInRounds(mint=lambda: f"s{next(counter)}")


def round_for(rounds: SignInRounds, request: JsonObject) -> JsonObject:
    assert rounds.from_local(request) == Forward(request)
    reply = rounds.sign_in_reply(request["id"], URL, "Sign in")
    assert reply is not None
    result: JsonObject = reply["result"]
    return result


def retry_of(request: JsonObject, result: JsonObject, action: str, new_id: int) -> JsonObject:
    params = {
        **request["params"],
        "inputResponses": {INPUT_KEY: {"action": action}},
        "requestState": result["requestState"],
    }
    return jsonrpc.request(new_id, request["method"], params)


def test_a_round_is_one_url_elicitation_and_a_state_of_the_bridge() -> None:
    rounds = counting_mint()
    request = call(1)
    assert rounds.from_local(request) == Forward(request)
    assert rounds.answers_early(1)
    result = round_for(rounds, request)
    assert result["resultType"] == "input_required"
    assert result["requestState"] == f"{STATE_PREFIX}s0"
    elicitation = result["inputRequests"][INPUT_KEY]
    assert elicitation["method"] == "elicitation/create"
    assert elicitation["params"]["mode"] == "url"
    assert elicitation["params"]["url"] == URL
    assert elicitation["params"]["message"] == "Sign in"
    assert not rounds.answers_early(1)  # answered: forgotten


def test_only_modern_mrtr_requests_that_declared_url_elicitation_get_one() -> None:
    rounds = SignInRounds()
    form_only = call(1, {"elicitation": {"form": {}}})
    legacy = jsonrpc.request(2, "tools/call", {"name": "echo"})
    listing = jsonrpc.request(3, "tools/list", call(3)["params"])
    for message in (form_only, legacy, listing):
        assert rounds.from_local(message) == Forward(message)
        assert rounds.sign_in_reply(message["id"], URL, "Sign in") is None
    assert rounds.from_local(call(4)) == Forward(call(4))
    assert rounds.sign_in_reply("4", URL, "x") is None  # ids compare by JSON value
    assert rounds.sign_in_reply(4, URL, "x") is not None


def test_an_accepted_retry_goes_on_plain_holding_its_rounds_url() -> None:
    rounds = counting_mint()
    request = call(1)
    result = round_for(rounds, request)
    step = rounds.from_local(retry_of(request, result, "accept", 2))
    assert isinstance(step, Forward)
    assert step.message["id"] == 2
    assert step.message["params"] == request["params"]  # no inputResponses, no requestState
    # Its client holds the round's URL: it waits for that login, and is handed another's.
    assert rounds.answers_early(2)
    assert rounds.url_held(2) == URL
    assert rounds.url_held(1) is None
    again = rounds.sign_in_reply(2, URL, "Sign in")  # ...and gets a new round if in vain
    assert again is not None
    assert again["result"]["requestState"] == f"{STATE_PREFIX}s1"


def test_the_remote_s_own_mrtr_fields_survive_a_round_of_ours() -> None:
    rounds = counting_mint()
    own: JsonObject = {"inputResponses": {"confirm": {"action": "accept"}}}
    request = call(1, **own, requestState="remote-1")
    result = round_for(rounds, request)
    step = rounds.from_local(retry_of(request, result, "accept", 2))
    assert isinstance(step, Forward)
    assert step.message["params"] == request["params"]


def test_decline_and_cancel_are_answered_here() -> None:
    for action, word in (("decline", "declined"), ("cancel", "dismissed")):
        rounds = SignInRounds()
        request = call(1)
        step = rounds.from_local(retry_of(request, round_for(rounds, request), action, 2))
        assert isinstance(step, Answer)
        assert step.reply["id"] == 2
        assert step.reply["result"]["isError"] is True
        assert word in step.reply["result"]["content"][0]["text"]
    rounds = SignInRounds()
    request = jsonrpc.request(1, "resources/read", {**call(1)["params"], "uri": "file:///a"})
    step = rounds.from_local(retry_of(request, round_for(rounds, request), "decline", 2))
    assert isinstance(step, Answer)
    assert step.reply["error"]["code"] == jsonrpc.REMOTE_UNAVAILABLE


def test_spent_forged_misused_and_unanswered_states_are_refused() -> None:
    rounds = SignInRounds()
    request = call(1)
    result = round_for(rounds, request)
    other = jsonrpc.request(2, "tools/call", {**request["params"], "name": "add"})
    misused = rounds.from_local(retry_of(other, result, "accept", 2))
    assert isinstance(misused, Answer)
    assert "another request" in misused.reply["error"]["message"]
    spent = rounds.from_local(retry_of(request, result, "accept", 3))  # spent by the misuse
    forged = rounds.from_local(retry_of(request, {"requestState": f"{STATE_PREFIX}x"}, "accept", 4))
    for step in (spent, forged):
        assert isinstance(step, Answer)
        assert step.reply["error"]["code"] == jsonrpc.INVALID_PARAMS
    result = round_for(rounds, call(5))
    unanswered = {**call(5)["params"], "requestState": result["requestState"]}
    step = rounds.from_local(jsonrpc.request(6, "tools/call", unanswered))
    assert isinstance(step, Answer)
    assert INPUT_KEY in step.reply["error"]["message"]


def test_the_answers_to_a_retry_are_never_cached() -> None:
    """MRTR retries' results must not be cached (2026-07-28 caching): none of the methods
    that may carry one has a cache key, with or without the MRTR fields."""
    request = call(1, inputResponses={INPUT_KEY: {}}, requestState=f"{STATE_PREFIX}x")
    for method in ("tools/call", "resources/read", "prompts/get"):
        assert answer_key({**request, "method": method}, "2025-11-25") is None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=12,
)
STATES = st.sampled_from([f"{STATE_PREFIX}s0", f"{STATE_PREFIX}", "remote", None]) | st.text(
    max_size=12
)
ACTIONS = st.sampled_from(["accept", "decline", "cancel", "maybe", None]) | JSON


@st.composite
def client_requests(draw: st.DrawFn) -> JsonObject:
    method = draw(st.sampled_from(["tools/call", "resources/read", "prompts/get", "tools/list"]))
    params: JsonObject = draw(st.dictionaries(st.text(max_size=6), JSON, max_size=3))
    if draw(st.booleans()):
        params["_meta"] = draw(
            st.sampled_from([call(0)["params"]["_meta"], modern_meta(), {}]) | JSON
        )
    if (state := draw(STATES)) is not None:
        params["requestState"] = state
    if draw(st.booleans()):
        params["inputResponses"] = draw(
            st.fixed_dictionaries({INPUT_KEY: st.fixed_dictionaries({"action": ACTIONS})}) | JSON
        )
    message: JsonObject = {"jsonrpc": "2.0", "method": method, "params": params}
    if draw(st.integers(0, 9)) == 0:
        message["method"] = draw(JSON)  # the front parses lines before anything checks them
    request_id = draw(st.integers(0, 3) | st.text(max_size=2) | st.none())
    if request_id is not None:
        message["id"] = request_id
    if draw(st.booleans()):
        message["params"] = draw(JSON)
    return message


@settings(max_examples=400)
@given(st.lists(client_requests(), min_size=1, max_size=6))
def test_any_request_is_forwarded_or_answered_and_our_state_never_goes_up(
    messages: list[JsonObject],
) -> None:
    rounds = counting_mint()
    for message in messages:
        step = rounds.from_local(message)
        if isinstance(step, Answer):
            assert step.reply["id"] == message["id"]
            continue
        if not jsonrpc.is_request_id(message.get("id")):
            continue
        params = step.message.get("params")
        state = params.get("requestState") if isinstance(params, dict) else None
        if message["method"] in ("tools/call", "resources/read", "prompts/get"):
            assert not (isinstance(state, str) and state.startswith(STATE_PREFIX))
        if rounds.answers_early(message["id"]):
            reply = rounds.sign_in_reply(message["id"], URL, "Sign in")
            assert reply is not None
            assert reply["result"]["requestState"].startswith(STATE_PREFIX)


@settings(max_examples=300)
@given(JSON)
@example({INPUT_KEY: {"action": []}})  # an unhashable action (found by the fuzzer above)
def test_the_small_parsers_take_any_json(value: object) -> None:
    assert elicit_action(value) in (None, "accept", "decline", "cancel")
    assert elicit_action({INPUT_KEY: value}) in (None, "accept", "decline", "cancel")
    if isinstance(value, dict):
        assert declares_url_elicitation(value) in (True, False)
        assert declares_url_elicitation({"_meta": value}) in (True, False)


# -- the FrontChannel around it ------------------------------------------------------------


async def test_the_front_answers_a_round_and_passes_the_plain_retry(tmp_path: Path) -> None:
    request = call(1)
    client = MemoryClient(request)
    book = AnswerBook(tmp_path, "https://mcp.example/mcp")
    rounds = counting_mint()
    front = CachedFront(book.get, is_transparent=True)
    channel = FrontChannel(client, front, book, on_cache_answer=lambda m: None, rounds=rounds)
    assert await passed_on(channel) == request
    error = jsonrpc.error_response(1, -32000, "Sign in", {"signInUrl": URL})
    channel.send(jsonrpc.encode(error))
    result = client.received[-1]["result"]
    assert result["resultType"] == "input_required"
    # Our state makes a line worth parsing whatever its size: it never goes upstream.
    big = retry_of(request, result, "accept", 2)
    big["params"]["arguments"]["text"] = "x" * 100_000
    foreign = call(3, requestState="remote-state")
    foreign["params"]["arguments"]["text"] = "y" * 100_000
    spent = retry_of(request, result, "accept", 4)
    client = MemoryClient(big, foreign, spent)
    channel = FrontChannel(client, front, book, on_cache_answer=lambda m: None, rounds=rounds)
    plain = await passed_on(channel)
    assert isinstance(plain, dict)
    assert plain["id"] == 2
    assert "requestState" not in plain["params"]
    assert "inputResponses" not in plain["params"]
    assert await passed_on(channel) == foreign  # the remote's own state: untouched
    assert await channel.receive() is None  # the spent one was answered here
    assert client.received[-1]["error"]["code"] == jsonrpc.INVALID_PARAMS
