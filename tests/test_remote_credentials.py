"""What a transport tells its credential provider: the method and URL of every request and
of every redirect hop (a DPoP proof names both), each `DPoP-Nonce` a response carries, and
how often a 401 is retried (once, plus once for a 401 that brings a DPoP nonce)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from mcp_bridge import jsonrpc
from mcp_bridge.protocol import Era
from mcp_bridge.remote.endpoint import ConnectOptions
from mcp_bridge.remote.streamable import StreamableHttpTransport
from tests.fixtures.hostile_server import LIST
from tests.fixtures.local_http import serving_app
from tests.fixtures.mcp_servers import Inbox


@dataclass
class RecordingCredentials:
    """A CredentialProvider that records what the transport tells it; its header names
    the request it was made for, as a DPoP proof does."""

    asked: list[tuple[str, str]] = field(default_factory=list)
    nonces: list[tuple[str, str]] = field(default_factory=list)
    unauthorized: int = 0

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        self.asked.append((method, url))
        return {"X-Made-For": f"{method} {url}"}

    def on_dpop_nonce(self, url: str, nonce: str) -> None:
        self.nonces.append((url, nonce))

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        self.unauthorized += 1
        return True

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        return False

    async def on_retry_refused(self, www_authenticate: str | None) -> None:
        return None


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def transport_to(
    posts: Mapping[str, Handler], credentials: RecordingCredentials, inbox: Inbox
) -> AsyncIterator[tuple[StreamableHttpTransport, str]]:
    """A transport to /mcp of a server answering POSTs to each path with its handler."""
    app = web.Application()
    for path, handler in posts.items():
        app.router.add_post(path, handler)
    async with serving_app(app) as origin:
        url = f"{origin}/mcp"
        options = ConnectOptions(credentials=credentials)
        transport = StreamableHttpTransport(url, Era.MODERN, options)
        await transport.start(inbox.deliver)
        try:
            yield transport, url
        finally:
            await transport.aclose()


def answer(body: bytes, headers: Mapping[str, str] | None = None) -> web.Response:
    message = jsonrpc.decode(body)
    assert isinstance(message, dict)
    request_id = message["id"]
    return web.json_response(jsonrpc.result_response(request_id, {}), headers=headers)


async def test_each_request_and_each_redirect_hop_gets_headers_made_for_it(inbox: Inbox) -> None:
    reached: list[str] = []

    async def moved(request: web.Request) -> web.Response:
        reached.append(request.headers["X-Made-For"])
        raise web.HTTPTemporaryRedirect("/v2/mcp?tenant=a")

    async def served(request: web.Request) -> web.Response:
        reached.append(request.headers["X-Made-For"])
        return answer(await request.read())

    credentials = RecordingCredentials()
    posts = {"/mcp": moved, "/v2/mcp": served}
    async with transport_to(posts, credentials, inbox) as (transport, url):
        await transport.send(LIST)
        assert "result" in await inbox.response(1)
    moved_to = url.replace("/mcp", "/v2/mcp?tenant=a")
    assert credentials.asked == [("POST", url), ("POST", moved_to)]
    assert reached == [f"POST {url}", f"POST {moved_to}"]


async def test_a_dpop_nonce_on_any_answer_reaches_the_provider(inbox: Inbox) -> None:
    async def served(request: web.Request) -> web.Response:
        return answer(await request.read(), {"DPoP-Nonce": "n-1"})

    credentials = RecordingCredentials()
    async with transport_to({"/mcp": served}, credentials, inbox) as (transport, url):
        await transport.send(LIST)
        assert "result" in await inbox.response(1)
    assert credentials.nonces == [(url, "n-1")]


async def test_a_401_bringing_a_nonce_is_retried_even_after_the_login_retry(
    inbox: Inbox,
) -> None:
    refusals = iter(
        [
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
            {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": "n-2"},
        ]
    )

    async def served(request: web.Request) -> web.Response:
        refusal = next(refusals, None)
        if refusal is not None:
            return web.Response(status=401, headers=refusal)
        return answer(await request.read())

    credentials = RecordingCredentials()
    async with transport_to({"/mcp": served}, credentials, inbox) as (transport, _):
        await transport.send(LIST)
        assert "result" in await inbox.response(1)
    assert credentials.unauthorized == 2
    assert len(credentials.asked) == 3


async def test_a_server_that_demands_nonces_for_ever_is_answered_with_an_error(
    inbox: Inbox,
) -> None:
    served = 0

    async def always(request: web.Request) -> web.Response:
        nonlocal served
        served += 1
        challenge = {"WWW-Authenticate": 'DPoP error="use_dpop_nonce"', "DPoP-Nonce": f"n{served}"}
        return web.Response(status=401, headers=challenge)

    credentials = RecordingCredentials()
    async with transport_to({"/mcp": always}, credentials, inbox) as (transport, _):
        await transport.send(LIST)
        error = (await inbox.response(1))["error"]
    assert "401" in error["message"]
    assert served == 3  # the request, the nonce retry, the one 401 retry: no loop
