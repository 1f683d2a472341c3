"""The device grant (RFC 8628, `--device`) against a small aiohttp AS that offers it
(tests/fixtures/device_as.py): polling through authorization_pending and slow_down, the
resource and DPoP rules, refusals; and what a request is told while a device login is
needed. The grant's steps alone are in test_device_grant_steps.py."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from mcp_bridge.auth import login_coordinator
from mcp_bridge.auth.device_grant import DEVICE_CODE_GRANT, MAX_INTERVAL_S, MIN_INTERVAL_S
from mcp_bridge.auth.device_login import DeviceLogin
from mcp_bridge.auth.dpop import jwk_thumbprint
from mcp_bridge.auth.dpop_proofs import ServerDpop
from mcp_bridge.auth.errors import AuthError, AuthorizationDenied, LoginRequired
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.device_as import DeviceAs, DeviceAsFactory
from tests.fixtures.oauth_client import NoClients, OAuthPeers, settings_for


async def device_login(
    state: DeviceAs, shown: list[str], *, dpop: ServerDpop | None = None, **settings: Any
) -> Any:
    async with aiohttp.ClientSession() as http:
        flow = DeviceLogin(
            state.mcp_url,
            settings_for(device=True, open_browser=False, **settings),
            NoClients(),
            policy=UrlPolicy.for_server(state.mcp_url),
            http=lambda: http,
            notify=shown.append,
            dpop=dpop,
        )
        return await flow.run()


async def test_device_login_polls_through_pending_and_slow_down(
    device_as: DeviceAsFactory,
) -> None:
    state = await device_as(
        ["authorization_pending", "slow_down", "authorization_pending", "tokens"]
    )
    shown: list[str] = []

    result = await device_login(state, shown)

    assert result.tokens.access_token == "device-access"
    assert result.tokens.resource == state.mcp_url
    assert len(state.polls) == 4
    assert all(poll["grant_type"] == DEVICE_CODE_GRANT for poll in state.polls)
    # the RFC 8707 resource goes on every token request (MCP Authorization)
    assert all(poll["resource"] == state.mcp_url for poll in state.polls)
    assert state.device_requests[0]["resource"] == state.mcp_url
    # slow_down (RFC 8628 §3.5): every later poll waits 5 s more than before.
    assert state.poll_times[2] - state.poll_times[1] >= 4.5
    assert DEVICE_CODE_GRANT in state.registrations[0]["grant_types"]
    assert any("WDJB-MJHT" in text and "/activate" in text for text in shown)
    assert not any("dev-code-secret" in text for text in shown)


async def test_device_login_learns_a_json_only_as_that_refuses_the_resource(
    device_as: DeviceAsFactory,
) -> None:
    """The browser login's retries, in the device login too: the device request learns
    both quirks (three tries), and every poll starts from what it learned."""
    state = await device_as(
        ["authorization_pending", "tokens"], token_json_only=True, rejects_resource=True
    )
    result = await device_login(state, [])
    assert [(r["body"], "resource" in r) for r in state.device_requests] == [
        ("form", True),
        ("json", True),
        ("json", False),
    ]
    assert [(p["body"], "resource" in p) for p in state.polls] == [("json", False)] * 2
    assert result.tokens.resource == state.mcp_url  # still bound to this server only
    assert (result.tokens.quirks.token_body, result.tokens.quirks.send_resource) == (
        "json",
        False,
    )


async def test_a_dpop_authorization_server_gets_a_proof_with_every_poll_and_binds_the_tokens(
    device_as: DeviceAsFactory,
) -> None:
    """As the browser login: an AS that lists ES256 for DPoP gets a proof of the server's
    key (made and kept in the vault first) on each token request, and the device login's
    tokens come back bound to that key."""
    state = await device_as(["authorization_pending", "tokens"], dpop=True)
    vault = MemoryVault()
    server_dpop = ServerDpop(state.mcp_url, vault)
    result = await device_login(state, [], dpop=server_dpop)
    assert result.tokens.is_dpop
    assert server_dpop.proofs is not None
    thumbprint = jwk_thumbprint(server_dpop.proofs.key.public_jwk)
    assert state.bound_to == [thumbprint, thumbprint]  # both polls, one key
    assert state.dpop is not None
    assert len(state.dpop.seen_jtis) == 2  # a fresh proof each time


async def test_no_resource_is_never_sent_by_the_device_login(device_as: DeviceAsFactory) -> None:
    state = await device_as(["tokens"], rejects_resource=True)
    await device_login(state, [], send_resource=False)
    assert [("resource" in r) for r in [*state.device_requests, *state.polls]] == [False] * 2


async def test_a_refused_device_login_is_an_authorization_denied(
    device_as: DeviceAsFactory,
) -> None:
    state = await device_as(["authorization_pending", "access_denied"])
    with pytest.raises(AuthorizationDenied, match="refused"):
        await device_login(state, [])


async def test_an_as_without_device_login_says_to_use_the_browser(
    device_as: DeviceAsFactory,
) -> None:
    state = await device_as([], offers_device=False)
    with pytest.raises(AuthError, match="no device login") as refused:
        await device_login(state, [])
    assert "without --device" in refused.value.next_step
    assert state.registrations == []  # nothing registered for a login that cannot happen


async def test_slow_down_stretches_the_interval_no_further_than_the_clamp(
    device_as: DeviceAsFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An AS that answers slow_down forever adds 5 s each time (RFC 8628 §3.5): the interval
    stops growing at MAX_INTERVAL_S. The waits are recorded, not slept."""
    state = await device_as(["slow_down"] * 14 + ["tokens"])
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(delay: float, *args: Any) -> Any:
        waits.append(delay)
        return await real_sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    await device_login(state, [])
    polls = [wait for wait in waits if wait >= MIN_INTERVAL_S]
    assert max(polls) == MAX_INTERVAL_S
    assert polls[-3:] == [MAX_INTERVAL_S] * 3


# -- what a request is told while a device login is needed ----------------------------


def said(error: AuthError) -> str:
    return f"{error.what}. {error.next_step}"


async def test_a_request_that_cannot_sign_in_here_names_the_device_login(
    oauth: OAuthPeers,
) -> None:
    settings = settings_for(device=True)
    credentials = oauth.credentials(
        "https://mcp.example/mcp", MemoryVault(), interactive=False, settings=settings
    )
    with pytest.raises(LoginRequired) as needed:
        await credentials.on_unauthorized(None)
    assert "needs a device sign-in" in said(needed.value)
    assert "`mcp-bridge login https://mcp.example/mcp --device`" in said(needed.value)
    assert "browser" not in said(needed.value)


async def test_a_request_that_outwaits_its_login_wait_hears_of_a_device_sign_in(
    device_as: DeviceAsFactory, oauth: OAuthPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A device login shows a code, not a URL to open in this machine's browser: the
    request that gives up waiting must not send the user looking for a browser tab, but
    gets the page and the code to hand its client (in the daemon, the only place the user
    sees them)."""
    monkeypatch.setattr(login_coordinator, "SIGN_IN_URL_WAIT_S", 5.0)
    state = await device_as(["authorization_pending"] * 5)
    shown: list[str] = []
    settings = settings_for(device=True, open_browser=False, login_wait_s=0.2)
    credentials = oauth.credentials(
        state.mcp_url, MemoryVault(), interactive=True, settings=settings, notify=shown.append
    )
    with pytest.raises(LoginRequired) as waiting:
        await credentials.on_unauthorized(None)
    assert any("enter the code" in text for text in shown)
    assert "device sign-in" in said(waiting.value)
    assert f"Open {state.origin}/activate and enter the code WDJB-MJHT" in said(waiting.value)
    assert waiting.value.sign_in_url == f"{state.origin}/activate"
    assert f"`mcp-bridge login {state.mcp_url} --device`" in said(waiting.value)
    assert "browser" not in said(waiting.value)


async def test_a_waiting_device_login_offers_its_page_and_code_to_hand_to_a_client(
    device_as: DeviceAsFactory,
) -> None:
    """In the daemon nobody reads what a device login prints: a request that stops waiting
    hands the client the page and the code (login_coordinator.py) instead, so the flow
    keeps them while it waits, and forgets them after."""
    state = await device_as(["authorization_pending", "tokens"])
    seen: list[tuple[str | None, str | None]] = []
    async with aiohttp.ClientSession() as http:
        flow = DeviceLogin(
            state.mcp_url,
            settings_for(device=True, open_browser=False),
            NoClients(),
            policy=UrlPolicy.for_server(state.mcp_url),
            http=lambda: http,
            notify=lambda text: seen.append((flow.pending_url, flow.pending_code)),
        )
        await flow.run()
    assert seen == [(f"{state.origin}/activate", "WDJB-MJHT")]
    assert flow.url_shown.is_set() is False
    assert (flow.pending_url, flow.pending_code) == (None, None)


async def test_a_device_login_is_offered_to_the_client_with_its_code(
    device_as: DeviceAsFactory, oauth: OAuthPeers
) -> None:
    """What a 2026-07-28 client's sign-in round is made of (engine/prompt_sign_in.py): the
    page to open and, for a device login, the code to enter there."""
    state = await device_as(["authorization_pending"] * 50)
    settings = settings_for(device=True, open_browser=False, login_wait_s=30.0)
    credentials = oauth.credentials(
        state.mcp_url, MemoryVault(), interactive=True, settings=settings, notify=lambda _: None
    )
    waiting = asyncio.ensure_future(credentials.on_unauthorized(None))
    try:
        async with asyncio.timeout(20):
            url, what_to_do = await credentials.sign_in_url_shown()
    finally:
        waiting.cancel()
        await asyncio.gather(waiting, return_exceptions=True)
        await credentials.aclose()
    assert url == f"{state.origin}/activate"
    assert what_to_do == f"Open {url} and enter the code WDJB-MJHT"
