"""Which redirects keep our `--header` credentials (issue 8, C): the same origin (scheme,
host and port, a default port written out or not), or http to https with both on their
default ports. An http -> https hop to another port of the same host is another origin:
whatever listens there must not get our headers."""

from __future__ import annotations

import contextlib
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web

from mcp_bridge.remote.endpoint import _same_site
from tests.fixtures.bridge_process import running_bridge
from tests.fixtures.local_http import serving_app
from tests.fixtures.tls_server import TlsFiles

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("http://h.example/mcp", "http://h.example/other"),
        ("http://h.example/mcp", "http://h.example:80/mcp"),
        ("https://h.example:443/mcp", "https://h.example/mcp"),
        ("http://h.example:8080/mcp", "http://h.example:8080/mcp/"),
        ("http://h.example/mcp", "https://h.example/mcp"),
        ("http://h.example:80/mcp", "https://h.example:443/mcp"),
        ("http://H.example/mcp", "https://h.EXAMPLE/mcp"),
    ],
)
def test_same_origin_or_the_default_http_to_https_upgrade_keeps_credentials(
    before: str, after: str
) -> None:
    assert _same_site(before, after)


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("http://h.example:8080/mcp", "https://h.example:8443/mcp"),
        ("http://h.example/mcp", "https://h.example:8443/mcp"),
        ("http://h.example:8080/mcp", "https://h.example/mcp"),
        ("http://h.example:8080/mcp", "http://h.example:8081/mcp"),
        ("https://h.example/mcp", "http://h.example/mcp"),
        ("http://h.example/mcp", "http://other.example/mcp"),
        ("http://h.example/mcp", "ftp://h.example/mcp"),
        ("http://h.example/mcp", "http://h.example:99999/mcp"),  # the remote's Location
        ("http://h.example/mcp", "http://h.example:x/mcp"),
    ],
)
def test_any_other_hop_is_another_origin(before: str, after: str) -> None:
    assert not _same_site(before, after)


async def _serve(
    handler: Handler, stack: contextlib.AsyncExitStack, context: ssl.SSLContext | None = None
) -> int:
    """Serve every method and path with `handler` on a free port of 127.0.0.1 until `stack`
    closes; returns the port."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    origin = await stack.enter_async_context(serving_app(app, ssl_context=context))
    return int(origin.rsplit(":", 1)[1])


@pytest.fixture
async def http_to_https_on_another_port(
    tls_files: TlsFiles,
) -> AsyncIterator[tuple[str, list[dict[str, str]]]]:
    """An http server on one port of 127.0.0.1 that sends every request (307) to an https
    server on another port of it, which records what reaches it."""
    reached: list[dict[str, str]] = []

    async def record(request: web.Request) -> web.Response:
        reached.append(dict(request.headers))
        return web.json_response({"jsonrpc": "2.0", "id": 1, "result": {}})

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls_files.server_cert, tls_files.server_key)
    async with contextlib.AsyncExitStack() as stack:
        target = f"https://127.0.0.1:{await _serve(record, stack, context)}/mcp"

        async def bounce(request: web.Request) -> web.Response:
            raise web.HTTPTemporaryRedirect(target)

        yield f"http://127.0.0.1:{await _serve(bounce, stack)}/mcp", reached


async def test_an_http_to_https_hop_to_another_port_gets_no_credentials(
    http_to_https_on_another_port: tuple[str, list[dict[str, str]]],
    tls_files: TlsFiles,
    bridge_home: Path,
) -> None:
    url, reached = http_to_https_on_another_port
    # The https side is trusted, so only the origin rule can keep the bridge away from it.
    env = {"API_KEY": "s3cret", "SSL_CERT_FILE": str(tls_files.ca_cert)}
    args = (url, "--header", "X-Api-Key: ${API_KEY}")
    async with running_bridge(bridge_home, *args, env=env) as bridge:
        refused = await bridge.initialize()
        message = refused["error"]["message"]
        assert "redirected" in message
        assert "s3cret" not in message
    # The auth layer's own metadata look-up may get here, but never with our headers.
    assert not [headers for headers in reached if "X-Api-Key" in headers]
