"""Redirects from the MCP endpoint are judged hop by hop (MCP Security Best Practices, SSRF): a
307/308 within the same origin is followed (Starlette answers `/mcp/` with a 307 to `/mcp`), one
to another origin is refused before any of our headers reach it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web

from tests.fixtures.bridge_process import running_bridge
from tests.fixtures.mcp_servers import ServerProcess


async def test_a_same_origin_redirect_is_followed(
    sdk_stateless: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, sdk_stateless.url + "/") as bridge:
        assert "result" in await bridge.initialize()
        assert "result" in await bridge.request("tools/list")


@pytest.fixture
async def redirect_to_elsewhere() -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """A server that sends every POST to another origin, and that other origin, recording
    what reaches it."""
    reached: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        reached.append(dict(request.headers))
        return web.json_response({})

    elsewhere = web.Application()
    elsewhere.router.add_route("*", "/{tail:.*}", record)
    elsewhere_runner = web.AppRunner(elsewhere)
    await elsewhere_runner.setup()
    await web.TCPSite(elsewhere_runner, "127.0.0.1", 0).start()
    target = f"http://127.0.0.1:{elsewhere_runner.addresses[0][1]}/mcp"

    async def bounce(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(target)

    front = web.Application()
    front.router.add_route("*", "/{tail:.*}", bounce)
    front_runner = web.AppRunner(front)
    await front_runner.setup()
    await web.TCPSite(front_runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{front_runner.addresses[0][1]}/mcp", reached
    finally:
        await front_runner.cleanup()
        await elsewhere_runner.cleanup()


async def test_a_redirect_to_another_origin_is_refused_before_our_headers_go_there(
    redirect_to_elsewhere: tuple[str, list[dict[str, str]]], bridge_home: Path
) -> None:
    url, reached = redirect_to_elsewhere
    args = (url, "--header", "X-Api-Key: ${API_KEY}")
    async with running_bridge(bridge_home, *args, env={"API_KEY": "s3cret"}) as bridge:
        refused = await bridge.initialize()
        message = refused["error"]["message"]
        assert "redirected" in message
        assert "s3cret" not in message
    assert reached == []
