"""`mcp-bridge status --open`: the daemon's status page, end to end. A real daemon under a
temporary MCP_BRIDGE_HOME, a login stored at the demo authorization server, the page opened
through the bridge's own browser opener, and real headless Chromium clicking its buttons.

A wrong secret in the URL is answered 404 (as any unknown path: nothing to learn); a foreign
Host header, a cross-site POST and a POST without the page's CSRF token are answered 403.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from mcp_bridge.daemon.status_page import StatusPage
from mcp_bridge.engine.registry import CredentialRegistry
from mcp_bridge.paths import bridge_paths
from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon
from tests.browsers.driven_chromium import chromium_page, screenshot
from tests.fixtures.auth_server import REPO_ROOT, AuthServer, AuthServerFactory
from tests.fixtures.bridge_process import mcp_bridge_cli, mcp_bridge_json, oauth_env
from tests.fixtures.daemon_process import daemon_process, stop_daemon
from tests.fixtures.oauth_client import needs_chromium

ARTIFACT = REPO_ROOT / "test-artifacts" / "status-page.png"
LOGIN_WAIT_S = 120.0


@pytest.fixture
async def page_url(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path
) -> AsyncIterator[tuple[str, AuthServer]]:
    """A stored login for the named server `demo`, and the URL `status --open` printed
    (after opening it with the redirect-following $BROWSER, which recorded what it saw)."""
    server = auth_server()
    assert (await cli(bridge_home, "add", "demo", server.mcp_url))[0] == 0
    assert (await cli(bridge_home, "login", "demo"))[0] == 0
    record = tmp_path / "opened.json"
    code, said = await cli(bridge_home, "status", "--open", BROWSER_RECORD=str(record))
    assert code == 0, said
    url = said.splitlines()[0]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]{40,}/", url), said
    opened = json.loads(record.read_text())
    assert opened["url"] == url  # the opener took it to the browser, and the page answered
    assert "demo" in opened["page"]
    assert "logged in" in opened["page"]
    try:
        yield url, server
    finally:
        await asyncio.to_thread(stop_daemon, bridge_home)


async def cli(home: Path, *argv: str, **env: str) -> tuple[int, str]:
    return await mcp_bridge_cli(home, *argv, env={**oauth_env(), **env}, stdout=True)


async def stored_logins(home: Path) -> list[dict[str, object]]:
    report = await mcp_bridge_json(home, "status", "--json", env=oauth_env())
    logins: list[dict[str, object]] = report["logins"]
    return logins


async def test_the_page_is_only_for_its_own_url_host_and_forms(
    page_url: tuple[str, AuthServer], bridge_home: Path
) -> None:
    url, _ = page_url
    port = urlsplit(url).port
    assert port is not None
    async with aiohttp.ClientSession() as http:
        async with http.get(url, headers={"Origin": "https://evil.example"}) as page:
            assert page.status == 200
            body = await page.text()
            assert "Access-Control-Allow-Origin" not in page.headers
            assert page.headers["Cache-Control"] == "no-store"
            assert page.headers["Referrer-Policy"] == "no-referrer"
            assert page.headers["X-Frame-Options"] == "DENY"
            assert "script-src" not in page.headers["Content-Security-Policy"]
            assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert "access_token" not in body
        assert "refresh_token" not in body
        token = re.search(r'name="csrf" value="([^"]+)"', body)
        server = re.search(r'name="server" value="([^"]+)"', body)
        assert token is not None
        assert server is not None
        form = {"csrf": token.group(1), "server": server.group(1)}

        wrong_secret = f"http://127.0.0.1:{port}/s/{'A' * 43}/"
        async with http.get(wrong_secret) as refused:
            assert refused.status == 404
            assert refused.headers["Cache-Control"] == "no-store"
        for host in (f"evil.example:{port}", f"127.0.0.1:{port + 1}", "localhost"):
            async with http.get(url, headers={"Host": host}) as refused:
                assert refused.status == 403, host
        same_origin = {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin"}
        cross_site = [
            {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"},
            {"Origin": f"http://localhost:{port}"},  # another origin than the Host's
            {"Origin": f"http://127.0.0.1:{port}", "Sec-Fetch-Site": "same-site"},
            {"Origin": "null", "Sec-Fetch-Site": "cross-site"},
            {"Origin": "null"},  # a browser without Sec-Fetch-*: nothing tells where from
            {},  # no Origin at all
        ]
        for headers in cross_site:
            async with http.post(f"{url}logout", data=form, headers=headers) as refused:
                assert refused.status == 403, headers
                assert "Access-Control-Allow-Origin" not in refused.headers
        no_token = {"server": form["server"], "csrf": "x" * len(form["csrf"])}
        async with http.post(f"{url}logout", data=no_token, headers=same_origin) as refused:
            assert refused.status == 403
        async with http.post(f"{wrong_secret}logout", data=form, headers=same_origin) as refused:
            assert refused.status == 404
    (login,) = await stored_logins(bridge_home)  # nothing above logged out
    assert login["tokens"] is not None


@needs_chromium
async def test_log_out_and_in_again_through_the_page_in_chromium(
    page_url: tuple[str, AuthServer], bridge_home: Path, tmp_path: Path
) -> None:
    url, server = page_url
    shot = tmp_path / "status-page.png"
    await asyncio.to_thread(screenshot, url, shot)
    ARTIFACT.parent.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACT)

    async with chromium_page(url) as page:
        text = await page.wait_for_text("logged in")
        assert "demo" in text
        assert server.mcp_url in text
        assert "expires in" in text
        await page.click("button.logout")
        text = await page.wait_for_text("logged out at")
        assert "not logged in" in text
        assert await stored_logins(bridge_home) == []  # what `status` shows: none

        await page.click("button.login")  # the daemon signs in with its $BROWSER
        await page.wait_for_text("signing in")
        async with asyncio.timeout(LOGIN_WAIT_S):
            while not await stored_logins(bridge_home):  # noqa: ASYNC110 - another process
                await asyncio.sleep(0.2)
        await page.evaluate("location.reload()")
        text = await page.wait_for_text("signed in at")
        assert "not logged in" not in text
    stats = server.stats()
    assert stats["authorizations"] == 2  # `mcp-bridge login`, then the page's Log in


async def test_a_daemon_that_predates_the_page_is_retired_and_replaced(
    bridge_home: Path, daemon_transport: str
) -> None:
    """A daemon of an older mcp-bridge answers `page` with "Unknown daemon request": `status
    --open` stops it and asks a current one, as a shim does for a session."""
    old_version = (
        "import sys, mcp_bridge; mcp_bridge.__version__ = '0.0.1-old'; "
        "from mcp_bridge.daemon import hello; hello.COMMANDS = ('status', 'stop'); "
        "from mcp_bridge.cli import main; sys.exit(main(['daemon']))"
    )
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
    try:
        async with daemon_process(bridge_home, old_version) as old:
            assert ask_daemon(paths, "status")["version"] == "0.0.1-old"
            with pytest.raises(DaemonUnavailable, match="Unknown daemon request 'page'"):
                ask_daemon(paths, "page")
            code, said = await cli(bridge_home, "status", "--open", BROWSER="/bin/true")
            assert code == 0, said
            assert "restarting the daemon" in said
            assert said.splitlines()[0].startswith("http://127.0.0.1:")  # stdout: the URL
            assert await asyncio.wait_for(old.wait(), 15) == 0
            assert ask_daemon(paths, "status")["version"] != "0.0.1-old"
    finally:
        await asyncio.to_thread(stop_daemon, bridge_home)


async def test_an_idle_page_stops_listening_and_comes_back_at_a_new_url(
    bridge_home: Path,
) -> None:
    """A page URL left in a browser's history must not stay a way into the daemon: after
    its idle time without a request the page closes, and the next start draws a new port
    and secret. A request (any, even a refused one) counts as use."""
    registry = CredentialRegistry(bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)}))
    page = StatusPage(registry, lambda: {}, idle_close_s=0.5)
    try:
        first = await page.start()
        assert await page.start() == first  # while it listens: the same URL
        async with aiohttp.ClientSession() as http:
            for _ in range(4):  # kept busy for longer than the idle time
                await asyncio.sleep(0.2)
                async with http.get(f"{first}nothing-here") as refused:
                    assert refused.status == 404
            assert page.is_listening
            async with asyncio.timeout(10):
                while page.is_listening:  # noqa: ASYNC110 -- a state, polled briefly
                    await asyncio.sleep(0.05)
            with pytest.raises(aiohttp.ClientConnectionError):
                async with http.get(first):
                    pass
            second = await page.start()
            assert second != first
            assert urlsplit(second).path != urlsplit(first).path  # a new secret
            async with http.get(f"{second}nothing-here") as refused:
                assert refused.status == 404
    finally:
        await page.aclose()
    await registry.aclose()
