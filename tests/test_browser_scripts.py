"""The `$BROWSER` scripts in tests/browsers/, end to end: the auth server fixture's
/authorize (and consent page), a real browser (or the fast follower) opened through
`open_in_browser`, and the redirect landing on a real loopback listener."""

from __future__ import annotations

import json
import os
from pathlib import Path

import aiohttp
import pytest

from mcp_bridge.auth.authorize import PendingAuthorization, validate_callback
from mcp_bridge.auth.browser import open_in_browser
from mcp_bridge.auth.errors import CallbackRejected
from mcp_bridge.auth.loopback import CallbackQuery, LoopbackListener
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.auth_server_client import TinyClient
from tests.fixtures.oauth_client import CHROMIUM_SCRIPT, FOLLOWER, needs_chromium

PROFILE_PREFIX = "mcp-bridge-chromium-"
STATE = "browser-test-state"


async def log_in_through_browser(
    server: AuthServer, http: aiohttp.ClientSession, *, url_suffix: str = ""
) -> CallbackQuery:
    """Register with the listener's redirect URI, open the authorization URL through
    $BROWSER, and return the query that reached the listener."""
    client = TinyClient(http, server)
    async with LoopbackListener(timeout_s=120) as listener:
        client.redirect_uri = listener.redirect_uri
        await client.register()
        waiting = listener.expect(STATE, lambda query: query)
        assert await open_in_browser(
            client.authorization_url(STATE) + url_suffix, launch_wait_s=120
        )
        query = await waiting.result()
    assert listener.is_closed
    status, _ = await client.token(
        grant_type="authorization_code",
        code=query["code"],
        redirect_uri=client.redirect_uri,
        code_verifier=client.verifier,
    )
    assert status == 200  # the code that came through the browser is a real one
    return query


def use_browser(monkeypatch: pytest.MonkeyPatch, script: Path, record: Path) -> None:
    monkeypatch.setenv("BROWSER", str(script))
    monkeypatch.setenv("BROWSER_RECORD", str(record))


async def test_follower_lands_on_the_listener_with_auto_consent(
    auth_server: AuthServerFactory,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = auth_server()
    record = tmp_path / "landed.json"
    use_browser(monkeypatch, FOLLOWER, record)
    query = await log_in_through_browser(server, http)
    assert (query["state"], query["iss"]) == (STATE, server.issuer)
    landed = json.loads(record.read_text())
    assert landed["status"] == 200
    assert "Signed in" in landed["page"]


async def test_follower_clicks_allow_on_the_consent_page_without_scripts(
    auth_server: AuthServerFactory,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = auth_server(consent="page")
    use_browser(monkeypatch, FOLLOWER, tmp_path / "landed.json")
    query = await log_in_through_browser(server, http)
    assert query["state"] == STATE
    stats = server.stats()
    assert (stats["consent_pages"], stats["authorizations"]) == (1, 1)


def chromium_processes_of_ours() -> list[int]:
    """PIDs whose command line names one of our throw-away Chromium profiles."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if PROFILE_PREFIX.encode() in cmdline.read():
                    found.append(int(entry))
        except OSError:
            continue  # it exited while we looked
    return found


@pytest.mark.browser
@needs_chromium
async def test_headless_chromium_submits_consent_and_lands_on_the_listener(
    auth_server: AuthServerFactory,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = auth_server(consent="page", consent_autosubmit=True)
    record = tmp_path / "landed.json"
    use_browser(monkeypatch, CHROMIUM_SCRIPT, record)
    query = await log_in_through_browser(server, http)
    assert (query["state"], query["iss"]) == (STATE, server.issuer)
    landed = json.loads(record.read_text())
    assert landed["status"] == 0
    assert "Signed in" in landed["page"]  # the listener's page is what Chromium ended on
    assert server.stats()["consent_pages"] == 1
    assert chromium_processes_of_ours() == []


@pytest.mark.browser
@needs_chromium
async def test_headless_chromium_autosubmit_by_query_flag(
    auth_server: AuthServerFactory,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server = auth_server(consent="page")  # no auto-submit unless the URL asks for it
    client = TinyClient(http, server)
    record = tmp_path / "landed.json"
    use_browser(monkeypatch, CHROMIUM_SCRIPT, record)
    async with LoopbackListener(timeout_s=120) as listener:
        client.redirect_uri = listener.redirect_uri
        await client.register()
        waiting = listener.expect(STATE, lambda query: query)
        async with http.get(client.authorization_url(STATE), allow_redirects=False) as response:
            consent_url = response.headers["Location"]
        assert await open_in_browser(consent_url + "&autosubmit=1", launch_wait_s=120)
        query = await waiting.result()
    assert query["state"] == STATE
    assert "Signed in" in json.loads(record.read_text())["page"]
    assert chromium_processes_of_ours() == []


def pending_for(client: TinyClient, server: AuthServer) -> PendingAuthorization:
    return PendingAuthorization(
        state=STATE,
        code_verifier=client.verifier,
        issuer=server.issuer,
        iss_required=True,
        client_id=client.client_id,
        redirect_uri=client.redirect_uri,
        resource=server.mcp_url,
        scopes=("mcp",),
    )


@pytest.mark.parametrize("iss_mode", ["correct", "wrong", "missing"])
async def test_the_callers_verdict_decides_the_page_the_browser_sees(
    iss_mode: str,
    auth_server: AuthServerFactory,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """validate_callback (mcp_bridge.auth.authorize) judges; the browser is told the result."""
    server = auth_server() if iss_mode == "correct" else auth_server(iss=iss_mode)
    record = tmp_path / "landed.json"
    use_browser(monkeypatch, FOLLOWER, record)
    client = TinyClient(http, server)
    async with LoopbackListener(timeout_s=120) as listener:
        client.redirect_uri = listener.redirect_uri
        await client.register()
        url = client.authorization_url(STATE)
        pending = pending_for(client, server)
        waiting = listener.expect(STATE, lambda query: validate_callback(pending, query))
        assert await open_in_browser(url, launch_wait_s=120)
        if iss_mode == "correct":
            code = await waiting.result()
            assert (await client.exchange(code))["token_type"] == "Bearer"
        else:
            with pytest.raises(CallbackRejected):
                await waiting.result()
    landed = json.loads(record.read_text())
    if iss_mode == "correct":
        assert (landed["status"], "Signed in" in landed["page"]) == (200, True)
    else:
        assert landed["status"] == 400
        assert "Sign-in failed" in landed["page"]
        reason = "mix-up attack" if iss_mode == "wrong" else "has no `iss`"
        assert reason in landed["page"]
        assert server.stats()["token_exchanges"] == 0
