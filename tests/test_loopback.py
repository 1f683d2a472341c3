"""The loopback redirect listener, driven by a real HTTP client (aiohttp) on 127.0.0.1."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest

from mcp_bridge.auth.loopback import CallbackHost, CallbackQuery, LoopbackListener
from mcp_bridge.errors import AuthError

STATE = "s3cr3t-state"


def accept_code(query: CallbackQuery) -> str:
    """A judge in the shape of validate_callback: the code, or an AuthError."""
    if "error" in query:
        raise AuthError(f"The server refused: {query['error']}", next_step="Try again")
    return query["code"]


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield session


async def get(http: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    async with http.get(url) as response:
        return response.status, await response.text()


def can_connect(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        return sock.connect_ex((host, port)) == 0


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


async def test_redirect_uri_is_known_before_any_callback_and_uses_an_ephemeral_port() -> None:
    async with LoopbackListener() as listener:
        assert listener.port > 0
        assert listener.redirect_uri == f"http://127.0.0.1:{listener.port}/callback"
        assert can_connect("127.0.0.1", listener.port)


async def test_given_callback_port_is_used() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        free_port = probe.getsockname()[1]
    async with LoopbackListener(port=free_port) as listener:
        assert listener.redirect_uri == f"http://127.0.0.1:{free_port}/callback"


async def test_busy_callback_port_says_so() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen(1)
        busy = squatter.getsockname()[1]
        with pytest.raises(AuthError, match=f"port {busy} .* already in use"):
            async with LoopbackListener(port=busy):
                pass


async def test_one_matching_callback_is_accepted_then_the_listener_closes(
    http: aiohttp.ClientSession,
) -> None:
    async with LoopbackListener() as listener:
        waiting = listener.expect(STATE, accept_code)
        status, page = await get(http, f"{listener.redirect_uri}?code=abc&state={STATE}")
        assert status == 200
        assert "Signed in" in page
        assert await waiting.result() == "abc"
        assert listener.is_closed
        assert not can_connect("127.0.0.1", listener.port)


async def test_wrong_or_missing_state_is_ignored_and_the_listener_keeps_waiting(
    http: aiohttp.ClientSession,
) -> None:
    async with LoopbackListener() as listener:
        waiting = listener.expect(STATE, accept_code)
        for query in ("code=evil&state=other", "code=evil", f"code=a&state={STATE}&state=x"):
            status, page = await get(http, f"{listener.redirect_uri}?{query}")
            assert status == 400
            assert "not the one mcp-bridge is waiting for" in page
        assert not waiting.is_settled
        status, _ = await get(http, f"{listener.redirect_uri}?code=good&state={STATE}")
        assert status == 200
        assert await waiting.result() == "good"


async def test_callback_before_expect_is_ignored(http: aiohttp.ClientSession) -> None:
    async with LoopbackListener() as listener:
        status, _ = await get(http, f"{listener.redirect_uri}?code=x&state={STATE}")
        assert status == 400
        waiting = listener.expect(STATE, accept_code)
        await get(http, f"{listener.redirect_uri}?code=y&state={STATE}")
        assert await waiting.result() == "y"


async def test_other_paths_are_not_found(http: aiohttp.ClientSession) -> None:
    async with LoopbackListener() as listener:
        listener.expect(STATE, accept_code)
        status, _ = await get(http, f"http://127.0.0.1:{listener.port}/favicon.ico")
        assert status == 404


async def test_a_refused_callback_shows_the_escaped_reason_and_raises(
    http: aiohttp.ClientSession,
) -> None:
    async with LoopbackListener() as listener:
        waiting = listener.expect(STATE, accept_code)
        url = f"{listener.redirect_uri}?error=%3Cscript%3Ealert(1)%3C/script%3E&state={STATE}"
        status, page = await get(http, url)
        assert status == 400
        assert "Sign-in failed" in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "<script>" not in page
        with pytest.raises(AuthError, match="The server refused"):
            await waiting.result()
        assert listener.is_closed


async def test_only_one_callback_is_ever_accepted(http: aiohttp.ClientSession) -> None:
    async with LoopbackListener() as listener:
        waiting = listener.expect(STATE, accept_code)
        first, second = await asyncio.gather(
            get(http, f"{listener.redirect_uri}?code=one&state={STATE}"),
            get(http, f"{listener.redirect_uri}?code=two&state={STATE}"),
            return_exceptions=True,
        )
        statuses = [r[0] for r in (first, second) if isinstance(r, tuple)]
        assert statuses.count(200) == 1
        assert await waiting.result() in ("one", "two")


async def test_timeout_names_the_next_step() -> None:
    async with LoopbackListener(timeout_s=0.2) as listener:
        waiting = listener.expect(STATE, accept_code)
        with pytest.raises(AuthError) as caught:
            await waiting.result()
        message = str(caught.value)
        assert "No sign-in arrived" in message
        assert "mcp-bridge login" in message
        assert "open the printed URL" in message
        assert listener.is_closed


async def test_pasted_redirect_url_goes_through_the_same_judge() -> None:
    async with LoopbackListener() as listener:
        waiting = listener.expect(STATE, accept_code)
        with pytest.raises(AuthError, match="another login attempt"):
            waiting.submit_pasted(f"{listener.redirect_uri}?code=old&state=stale")
        with pytest.raises(AuthError, match="not addressed to"):
            waiting.submit_pasted(f"http://127.0.0.1:1/elsewhere?code=x&state={STATE}")
        assert not waiting.is_settled
        waiting.submit_pasted(f"  {listener.redirect_uri}?code=pasted&state={STATE}\n")
        assert await waiting.result() == "pasted"


async def test_pasted_error_callback_is_refused_by_the_judge() -> None:
    async with LoopbackListener() as listener:
        waiting = listener.expect(STATE, accept_code)
        waiting.submit_pasted(f"{listener.redirect_uri}?error=access_denied&state={STATE}")
        with pytest.raises(AuthError, match="access_denied"):
            await waiting.result()


async def test_localhost_variant_answers_on_both_loopback_addresses(
    http: aiohttp.ClientSession,
) -> None:
    async with LoopbackListener(host=CallbackHost.LOCALHOST) as listener:
        assert listener.redirect_uri == f"http://localhost:{listener.port}/callback"
        assert can_connect("127.0.0.1", listener.port)
        if ipv6_loopback_available():
            assert can_connect("::1", listener.port)
        waiting = listener.expect(STATE, accept_code)
        status, _ = await get(http, f"{listener.redirect_uri}?code=named&state={STATE}")
        assert status == 200
        assert await waiting.result() == "named"


async def test_lifecycle_misuse_is_explained() -> None:
    listener = LoopbackListener()
    with pytest.raises(RuntimeError, match="after start"):
        _ = listener.redirect_uri
    with pytest.raises(RuntimeError, match="before expect"):
        listener.expect(STATE, accept_code)
    async with listener:
        listener.expect(STATE, accept_code)
        with pytest.raises(RuntimeError, match="one login"):
            listener.expect(STATE, accept_code)
    with pytest.raises(RuntimeError, match="started once"):
        await listener.start()


async def test_head_request_does_not_use_up_the_callback(http: aiohttp.ClientSession) -> None:
    async with LoopbackListener() as listener:
        waiting = listener.expect(STATE, accept_code)
        async with http.head(f"{listener.redirect_uri}?code=pre&state={STATE}") as response:
            assert response.status == 405
        assert not waiting.is_settled
        await get(http, f"{listener.redirect_uri}?code=real&state={STATE}")
        assert await waiting.result() == "real"


async def test_no_task_is_left_behind() -> None:
    async with aiohttp.ClientSession() as session, LoopbackListener() as listener:
        waiting = listener.expect(STATE, accept_code)
        await get(session, f"{listener.redirect_uri}?code=c&state={STATE}")
        await waiting.result()
    assert asyncio.all_tasks() == {asyncio.current_task()}


async def test_a_judge_that_crashes_shows_no_details_and_reraises(
    http: aiohttp.ClientSession,
) -> None:
    def broken_judge(query: CallbackQuery) -> str:
        raise KeyError("internal detail")

    async with LoopbackListener() as listener:
        waiting = listener.expect(STATE, broken_judge)
        status, page = await get(http, f"{listener.redirect_uri}?code=c&state={STATE}")
        assert status == 500
        assert "internal error" in page
        assert "internal detail" not in page
        with pytest.raises(KeyError):
            await waiting.result()


@pytest.mark.parametrize("outcome", ["signed in", "refused"])
async def test_the_pages_name_the_server_the_login_is_for(
    http: aiohttp.ClientSession, outcome: str
) -> None:
    server = "https://mcp.example.com/<b>mcp</b>"
    async with LoopbackListener(server=server) as listener:
        waiting = listener.expect(STATE, accept_code)
        answer = "code=abc" if outcome == "signed in" else "error=access_denied"
        query = f"{answer}&state={STATE}"
        status, page = await get(http, f"{listener.redirect_uri}?{query}")
        if outcome == "signed in":
            assert await waiting.result() == "abc"
        else:
            with pytest.raises(AuthError):
                await waiting.result()
    title = "Signed in to " if outcome == "signed in" else "Sign-in to "
    assert (status == 200) == (outcome == "signed in")
    assert title + "https://mcp.example.com/&lt;b&gt;mcp&lt;/b&gt;" in page
    assert "<b>" not in page
