"""The step driver against a real aiohttp server on 127.0.0.1: redirects hop by hop under
the URL policy, body size cap, total timeout, network errors."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Generator

import aiohttp
import pytest
from aiohttp import web

from mcp_bridge.auth.errors import AuthResponseInvalid, AuthServerUnavailable, UrlRefused
from mcp_bridge.auth.http_step import HttpRequest, HttpResponse, Step, run_step
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.http_client import client_session


async def hop(request: web.Request) -> web.Response:
    left = int(request.match_info["left"])
    if left == 0:
        return web.json_response({"arrived": True})
    raise web.HTTPFound(f"/hop/{left - 1}")


async def redirect_to(request: web.Request) -> web.Response:
    raise web.HTTPFound(request.query["to"])


async def post_redirect(request: web.Request) -> web.Response:
    raise web.HTTPTemporaryRedirect("/hop/0")


async def big_declared(request: web.Request) -> web.Response:
    return web.Response(body=b"x" * (2 * 1024 * 1024))


async def big_chunked(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse()
    response.enable_chunked_encoding()
    await response.prepare(request)
    for _ in range(40):
        await response.write(b"y" * 64 * 1024)
    await response.write_eof()
    return response


async def slow(request: web.Request) -> web.Response:
    await asyncio.sleep(60)
    return web.Response(text="too late")


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "method": request.method,
            "body": (await request.read()).decode(),
            "ua": request.headers.get("User-Agent"),
        }
    )


@pytest.fixture
async def server() -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_get("/hop/{left}", hop)
    app.router.add_get("/redirect", redirect_to)
    app.router.add_post("/post-redirect", post_redirect)
    app.router.add_get("/big-declared", big_declared)
    app.router.add_get("/big-chunked", big_chunked)
    app.router.add_get("/slow", slow)
    app.router.add_route("*", "/echo", echo)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with client_session() as http:
        yield http


def policy_for(base: str) -> UrlPolicy:
    return UrlPolicy.for_server(f"{base}/mcp")


def fetch(url: str) -> Step[HttpResponse]:
    response = yield HttpRequest.get(url)
    return response


async def test_redirect_chain_is_followed_hop_by_hop(
    server: str, session: aiohttp.ClientSession
) -> None:
    response = await run_step(fetch(f"{server}/hop/5"), session, policy=policy_for(server))
    assert response.status == 200
    assert response.json(what="test") == {"arrived": True}
    assert response.url == f"{server}/hop/0"


async def test_more_than_five_redirects_are_refused(
    server: str, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(AuthResponseInvalid, match="more than 5"):
        await run_step(fetch(f"{server}/hop/6"), session, policy=policy_for(server))


@pytest.mark.parametrize(
    "target",
    [
        "http://10.0.0.1/metadata",
        "http://169.254.169.254/latest/meta-data",
        "https://[fd00::1]/x",
        "file:///etc/passwd",
        "http://example.com/downgraded-to-plain-http",
    ],
)
async def test_redirect_into_a_private_address_is_refused(
    server: str, session: aiohttp.ClientSession, target: str
) -> None:
    url = f"{server}/redirect?to={target}"
    with pytest.raises(UrlRefused):
        await run_step(fetch(url), session, policy=policy_for(server))


async def test_post_redirect_is_returned_not_followed(
    server: str, session: aiohttp.ClientSession
) -> None:
    def post() -> Step[HttpResponse]:
        response = yield HttpRequest.post_form(f"{server}/post-redirect", [("code", "secret")])
        return response

    response = await run_step(post(), session, policy=policy_for(server))
    assert response.status == 307


async def test_oversized_declared_body_is_refused(
    server: str, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(AuthResponseInvalid, match="larger than"):
        await run_step(fetch(f"{server}/big-declared"), session, policy=policy_for(server))


async def test_oversized_chunked_body_is_refused(
    server: str, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(AuthResponseInvalid, match="larger than"):
        await run_step(fetch(f"{server}/big-chunked"), session, policy=policy_for(server))


async def test_slow_server_times_out_naming_the_url(
    server: str, session: aiohttp.ClientSession
) -> None:
    with pytest.raises(AuthServerUnavailable, match="/slow"):
        await run_step(fetch(f"{server}/slow"), session, policy=policy_for(server), timeout_s=0.5)


async def test_connection_refused_is_unavailable_naming_the_url(
    session: aiohttp.ClientSession,
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with pytest.raises(AuthServerUnavailable, match=f"127.0.0.1:{port}"):
        await run_step(fetch(f"{base}/x"), session, policy=policy_for(base))


async def test_refused_first_url_sends_nothing(session: aiohttp.ClientSession) -> None:
    policy = UrlPolicy.for_server("https://mcp.example.com/mcp")
    with pytest.raises(UrlRefused):
        await run_step(fetch("https://10.1.1.1/x"), session, policy=policy)


async def test_multi_request_step_gets_each_response_and_is_closed(
    server: str, session: aiohttp.ClientSession
) -> None:
    closed: list[bool] = []

    def two_requests() -> Generator[HttpRequest, HttpResponse, list[object]]:
        try:
            first = yield HttpRequest.post_form(f"{server}/echo", [("a", "1")])
            second = yield HttpRequest.get(f"{server}/echo")
            return [first.json(what="t"), second.json(what="t")]
        finally:
            closed.append(True)

    first, second = await run_step(two_requests(), session, policy=policy_for(server))
    assert first == {"method": "POST", "body": "a=1", "ua": "mcp-bridge"}
    assert second == {"method": "GET", "body": "", "ua": "mcp-bridge"}
    assert closed == [True]


async def test_step_is_closed_when_the_driver_fails(
    server: str, session: aiohttp.ClientSession
) -> None:
    closed: list[bool] = []

    def doomed() -> Step[None]:
        try:
            yield HttpRequest.get(f"{server}/big-declared")
        finally:
            closed.append(True)

    with pytest.raises(AuthResponseInvalid):
        await run_step(doomed(), session, policy=policy_for(server))
    assert closed == [True]
