"""OAuth figures: a full login against the local fixture AS, and the per-call cost of the
bearer header. Run from the repository root: `python -m benchmarks.auth_bench [--logins N]`.

1. login, protocol only: discovery (PRM + AS metadata), dynamic registration, PKCE
   authorization (the redirect is read by hand and pasted back, no browser process), code
   exchange; median and spread of N fresh logins (a new vault each, so each registers);
2. login through `$BROWSER` = the stdlib redirect follower (adds two Python process starts);
3. `headers()` with a valid token, against the no-auth provider, side by side (the ratio).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp

from mcp_bridge.auth.login import BrowserLogin
from mcp_bridge.auth.settings import OAuthSettings
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.demo.auth_modes import AuthServerModes
from mcp_bridge.remote.base import NoCredentials
from tests.fixtures.auth_server import AuthServer
from tests.fixtures.oauth_client import FOLLOWER, NoClients, fresh_credentials

HEADER_CALLS = 200_000

log = logging.getLogger("auth_bench")


async def protocol_login_ms(server: AuthServer, http: aiohttp.ClientSession) -> float:
    urls: asyncio.Queue[str] = asyncio.Queue()

    def notify(text: str) -> None:
        if "http" in text:
            urls.put_nowait(text.splitlines()[-1])

    pasted: asyncio.Queue[str] = asyncio.Queue()

    async def lines() -> AsyncIterator[str]:
        while True:
            yield await pasted.get()

    flow = BrowserLogin(
        server.mcp_url,
        OAuthSettings(open_browser=False),
        NoClients(),
        policy=UrlPolicy.for_server(server.mcp_url),
        http=lambda: http,
        notify=notify,
        pasted_urls=lines,
    )
    started = time.perf_counter()
    login = asyncio.create_task(flow.run())
    url = await urls.get()
    async with http.get(url, allow_redirects=False) as response:
        await pasted.put(response.headers["Location"])
    await login
    return (time.perf_counter() - started) * 1000


async def browser_login_ms(server: AuthServer) -> float:
    async with fresh_credentials(server.mcp_url) as credentials:
        started = time.perf_counter()
        await credentials.login()
        return (time.perf_counter() - started) * 1000


async def headers_ns(server: AuthServer) -> tuple[float, float]:
    async with fresh_credentials(server.mcp_url) as credentials:
        await credentials.login()
        await credentials.headers("POST", server.mcp_url)
        none = NoCredentials()
        results: list[float] = []
        for provider in (credentials, none):
            started = time.perf_counter_ns()
            for _ in range(HEADER_CALLS):
                await provider.headers("POST", server.mcp_url)
            results.append((time.perf_counter_ns() - started) / HEADER_CALLS)
        return results[0], results[1]


def summary(name: str, values: list[float], unit: str) -> str:
    q = statistics.quantiles(values, n=10) if len(values) >= 2 else values * 2
    return (
        f"{name}: median {statistics.median(values):.1f} {unit}, "
        f"p10 {q[0]:.1f}, p90 {q[-1]:.1f}, n={len(values)}"
    )


async def main_async(logins: int) -> None:
    os.environ["BROWSER"] = str(FOLLOWER)
    with tempfile.TemporaryDirectory(prefix="auth-bench-") as logs:
        server = AuthServer.start(AuthServerModes(), Path(logs))
        try:
            async with aiohttp.ClientSession() as http:
                await protocol_login_ms(server, http)  # warm-up: imports, connections
                protocol = [await protocol_login_ms(server, http) for _ in range(logins)]
            browser = [await browser_login_ms(server) for _ in range(max(logins // 4, 3))]
            oauth_ns, none_ns = await headers_ns(server)
        finally:
            server.stop()
    out = sys.stdout
    out.write(
        summary("login, protocol only (PRM, AS metadata, DCR, authorize, token)", protocol, "ms")
        + "\n"
    )
    out.write(summary("login through the redirect-follower browser", browser, "ms") + "\n")
    out.write(
        f"headers() per call: OAuth {oauth_ns:.0f} ns, no auth {none_ns:.0f} ns, "
        f"ratio {oauth_ns / none_ns:.2f} ({HEADER_CALLS} calls each)\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--logins", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main_async(args.logins))


if __name__ == "__main__":
    main()
