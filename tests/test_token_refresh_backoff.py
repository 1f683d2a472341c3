"""A refresh the AS refuses without killing the grant (400 invalid_scope, a malformed 200)
keeps the tokens, so it is due again at once: the background loop and the request path must
wait 2, 4, 8 ... s (up to MAX_BACKOFF_S) before asking again, and a success resets that.

The SDK's AS cannot be made to answer a refresh grant with invalid_scope, so a small aiohttp
token endpoint plays the AS. It holds each answer until the test lets it go: the test joins
the refresh in flight (single-flight), so it knows without a timer when the manager has seen
the answer. Time is the TokenManager's injected clock, which only the test moves; the few ms
of real sleep in `settle()` only give a loop that does not wait the chance to show it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
from aiohttp import web

from mcp_bridge.auth import refresh_ahead
from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.discovery import AuthorizationContext
from mcp_bridge.auth.errors import AuthError, AuthServerUnavailable
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.refresh_timing import MARGIN_S, MAX_BACKOFF_S
from mcp_bridge.auth.token_manager import LoginResult, TokenManager
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy, canonical_resource
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.local_http import serving_app
from tests.fixtures.oauth_client import OAuthPeers

WAIT_S = 10.0  # a guard against hanging on a loaded machine, never a measured time
SETTLE_STEPS = 20  # short real sleeps in which a loop that does not wait would ask again
START = 1_800_000_000.0
LIFETIME_S = 3600.0
NUDGE_S = 0.01  # how far past a deadline the test moves the clock

INVALID_SCOPE = "invalid_scope"
MALFORMED = "malformed"  # a 200 without an access_token
TOKENS = "tokens"


class FakeClock:
    """The manager's clock: it moves only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class TokenAs:
    """A token endpoint that answers refresh grants from a script (the last answer
    repeats), each answer held until the test releases it."""

    answers: list[str]
    origin: str = ""
    refreshes: int = 0  # refresh requests received, answered or not
    issued: int = 0
    turns: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(0))
    seen: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def mcp_url(self) -> str:
        return f"{self.origin}/mcp"

    async def arrived(self, count: int) -> None:
        """Wait until `count` refresh requests have come in."""
        async with asyncio.timeout(WAIT_S), self.seen:
            await self.seen.wait_for(lambda: self.refreshes >= count)

    def _answer(self) -> web.Response:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if answer == INVALID_SCOPE:
            return web.json_response(
                {"error": "invalid_scope", "error_description": "scope mcp is gone"}, status=400
            )
        if answer == MALFORMED:
            return web.json_response({"token_type": "Bearer"})
        self.issued += 1
        return web.json_response(
            {
                "access_token": f"fresh-{self.issued}",
                "token_type": "Bearer",
                "expires_in": LIFETIME_S,
                "refresh_token": f"refresh-{self.issued}",
            }
        )

    async def token(self, request: web.Request) -> web.Response:
        form = await request.post()
        assert form.get("grant_type") == "refresh_token"
        async with self.seen:
            self.refreshes += 1
            self.seen.notify_all()
        await self.turns.acquire()
        return self._answer()


TokenAsFactory = Callable[[list[str]], Awaitable[TokenAs]]


@pytest.fixture
async def token_as() -> AsyncIterator[TokenAsFactory]:
    """`await token_as(answers)`: a running token endpoint on 127.0.0.1."""
    async with contextlib.AsyncExitStack() as stack:

        async def make(answers: list[str]) -> TokenAs:
            state = TokenAs(answers)
            app = web.Application()
            app.router.add_post("/token", state.token)
            serving = serving_app(app, access_log=None, shutdown_timeout=0.5)
            state.origin = await stack.enter_async_context(serving)
            return state

        yield make


async def logged_in(
    state: TokenAs, oauth: OAuthPeers, http: aiohttp.ClientSession, clock: FakeClock
) -> TokenManager:
    """A manager holding a login made at `clock`'s now, its token good for LIFETIME_S (so
    refreshed MARGIN_S before the end); nothing sent yet."""
    policy = UrlPolicy.for_server(state.mcp_url)
    manager = oauth.close_at_end(
        TokenManager(state.mcp_url, MemoryVault(), policy=policy, http=lambda: http, clock=clock)
    )
    metadata = AuthServerMetadata.guessed_for(state.origin)  # token endpoint: /token
    resource = canonical_resource(state.mcp_url)
    context = AuthorizationContext(resource, state.origin, metadata, None)
    client = ClientRegistration(state.origin, "client-1", RegistrationMethod.DCR, "none")
    tokens = TokenSet(
        "first",
        state.origin,
        resource,
        refresh_token="refresh-0",
        expires_at=clock() + LIFETIME_S,
    )
    await manager.save_login(LoginResult(context, client, tokens))
    return manager


async def settle() -> None:
    """A few ms of real time: long enough for a loop that does not wait to ask again."""
    for _ in range(SETTLE_STEPS):
        await asyncio.sleep(0.001)


async def nudge(manager: TokenManager) -> None:
    """Wake the background loop to look at the clock again. It sleeps on the event loop's
    clock, which the test does not move; a reload (as after another process's refresh)
    makes it recompute its deadline from the injected clock."""
    async with asyncio.timeout(WAIT_S):
        await manager.reload()


async def answered(manager: TokenManager, state: TokenAs, count: int) -> TokenSet | AuthError:
    """Wait for refresh request number `count`, join the refresh in flight that sent it,
    let the AS answer, and return how that refresh ended (so the manager has seen it)."""
    await state.arrived(count)
    state.turns.release()
    try:
        async with asyncio.timeout(WAIT_S):
            return await manager.refresh()  # single-flight: joins the refresh in flight
    except AuthError as exc:
        return exc


def assert_refused(outcome: TokenSet | AuthError) -> None:
    assert isinstance(outcome, AuthError), outcome
    assert not isinstance(outcome, AuthServerUnavailable)


async def assert_waits(
    manager: TokenManager, state: TokenAs, clock: FakeClock, backoff_s: float
) -> None:
    """The background loop sends nothing until `backoff_s` has passed, then exactly one
    refresh request."""
    count = state.refreshes
    await settle()
    assert state.refreshes == count, "asked again with the clock frozen"
    clock.advance(backoff_s - 1.0)
    await nudge(manager)
    await settle()
    assert state.refreshes == count, f"asked again before {backoff_s} s had passed"
    clock.advance(1.0 + NUDGE_S)
    await nudge(manager)
    await state.arrived(count + 1)
    await settle()
    assert state.refreshes == count + 1


def make_due(clock: FakeClock, manager: TokenManager) -> None:
    tokens = manager.tokens
    assert tokens is not None
    assert tokens.expires_at is not None
    clock.now = tokens.expires_at - MARGIN_S + NUDGE_S


@pytest.mark.parametrize("refusal", [INVALID_SCOPE, MALFORMED])
async def test_a_refused_background_refresh_waits_2_4_8_s_before_asking_again(
    refusal: str,
    token_as: TokenAsFactory,
    bridge_http: aiohttp.ClientSession,
    oauth: OAuthPeers,
) -> None:
    state = await token_as([refusal])
    clock = FakeClock(START)
    manager = await logged_in(state, oauth, bridge_http, clock)
    make_due(clock, manager)
    manager.start_background()

    assert_refused(await answered(manager, state, 1))
    for number, backoff_s in enumerate([2.0, 4.0, 8.0], start=2):
        await assert_waits(manager, state, clock, backoff_s)
        assert_refused(await answered(manager, state, number))

    tokens = manager.tokens  # a refusal is not a dead grant: the login is kept
    assert tokens is not None
    assert tokens.access_token == "first"


async def test_the_backoff_stops_growing_at_max_backoff_s(
    token_as: TokenAsFactory, bridge_http: aiohttp.ClientSession, oauth: OAuthPeers
) -> None:
    state = await token_as([INVALID_SCOPE])
    clock = FakeClock(START)
    manager = await logged_in(state, oauth, bridge_http, clock)
    make_due(clock, manager)
    manager.start_background()
    assert_refused(await answered(manager, state, 1))
    await settle()
    assert state.refreshes == 1

    backoff_s, count = 2.0, 1
    while backoff_s < MAX_BACKOFF_S:  # 2, 4, ... 256 s: no need to look at each
        clock.advance(backoff_s + NUDGE_S)
        await nudge(manager)
        count += 1
        assert_refused(await answered(manager, state, count))
        await settle()
        assert state.refreshes == count
        backoff_s *= 2
    for _ in range(2):
        await assert_waits(manager, state, clock, MAX_BACKOFF_S)
        count += 1
        assert_refused(await answered(manager, state, count))


async def test_a_successful_refresh_resets_the_backoff(
    token_as: TokenAsFactory, bridge_http: aiohttp.ClientSession, oauth: OAuthPeers
) -> None:
    state = await token_as([INVALID_SCOPE, INVALID_SCOPE, TOKENS, INVALID_SCOPE])
    clock = FakeClock(START)
    manager = await logged_in(state, oauth, bridge_http, clock)
    make_due(clock, manager)
    manager.start_background()
    assert_refused(await answered(manager, state, 1))
    await assert_waits(manager, state, clock, 2.0)
    assert_refused(await answered(manager, state, 2))
    await assert_waits(manager, state, clock, 4.0)

    renewed = await answered(manager, state, 3)

    assert isinstance(renewed, TokenSet), renewed
    assert renewed.access_token == "fresh-1"
    await settle()
    assert state.refreshes == 3  # the new token is not due for an hour
    make_due(clock, manager)
    await nudge(manager)
    assert_refused(await answered(manager, state, 4))
    await assert_waits(manager, state, clock, 2.0)  # from the start again, not 8 s


async def test_requests_during_the_backoff_use_the_old_token_and_send_nothing(
    token_as: TokenAsFactory, bridge_http: aiohttp.ClientSession, oauth: OAuthPeers
) -> None:
    state = await token_as([INVALID_SCOPE])
    state.turns = asyncio.Semaphore(1000)  # no background loop here to hold answers for
    clock = FakeClock(START)
    manager = await logged_in(state, oauth, bridge_http, clock)
    clock.now = START + LIFETIME_S - 3.0  # due, and the token is good for 3 s more

    for _ in range(5):
        assert (await manager.fresh_tokens()).access_token == "first"
    assert state.refreshes == 1  # the first call asked; the others waited for the backoff

    clock.advance(2.0 + NUDGE_S)  # past the 2 s backoff, 1 s before the token expires
    assert (await manager.fresh_tokens()).access_token == "first"
    assert state.refreshes == 2

    clock.advance(1.0)  # expired now, inside the 4 s backoff
    with pytest.raises(AuthError, match="invalid_scope") as during:
        await manager.fresh_tokens()
    assert not isinstance(during.value, AuthServerUnavailable)  # refused, not down
    assert "next try" in during.value.what
    assert state.refreshes == 2  # failed fast, sending nothing

    clock.advance(4.0)
    with pytest.raises(AuthError, match="invalid_scope"):
        await manager.fresh_tokens()
    assert state.refreshes == 3


async def test_a_token_due_while_the_machine_slept_is_refreshed_soon_after_waking(
    token_as: TokenAsFactory,
    bridge_http: aiohttp.ClientSession,
    oauth: OAuthPeers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The loop sleeps on the event loop's clock, which stops while the machine sleeps;
    it must look at the wall clock again within WAKE_CHECK_S of waking, with no nudge."""
    monkeypatch.setattr(refresh_ahead, "WAKE_CHECK_S", 0.05)
    state = await token_as([TOKENS])
    clock = FakeClock(START)
    manager = await logged_in(state, oauth, bridge_http, clock)
    manager.start_background()
    await settle()
    assert state.refreshes == 0
    make_due(clock, manager)  # the wall clock jumped: the machine slept past the deadline
    await state.arrived(1)
    state.turns.release()
