"""BrowserLogin against real authorization servers: every hostile mode of the fixture AS is
refused before a code is spent; a pasted redirect URL; the storm brake; the TypeScript SDK's
demo OAuth server; headless Chromium; and no token anywhere on disk but the vault."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mcp_bridge.auth.errors import AuthError
from mcp_bridge.auth.login import BrowserLogin
from mcp_bridge.auth.login_brake import LoginBrake
from mcp_bridge.auth.settings import Grant, OAuthSettings
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.paths import bridge_paths
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServerFactory, TsAuthServer
from tests.fixtures.oauth_client import (
    CHROMIUM_SCRIPT,
    NoClients,
    OAuthPeers,
    needs_chromium,
    settings_for,
    text_of,
    use_follower,
)
from tests.fixtures.vault_checks import assert_no_token_in_files, keyfile_vault

# mode -> words the refusal must contain (what happened, in the user's terms)
HOSTILE_MODES: list[tuple[dict[str, Any], str]] = [
    ({"iss": "wrong"}, "mix-up"),
    ({"iss": "missing"}, "has no `iss`"),
    ({"metadata_issuer_mismatch": True}, "issuer"),
    ({"no_pkce_methods": True}, "PKCE"),
    ({"javascript_authorization_endpoint": True}, "javascript"),
    ({"prm_resource_mismatch": True}, "resource"),
    ({"metadata_redirects_to_private": True}, "10.0.0.1"),
]


@pytest.mark.parametrize(("modes", "words"), HOSTILE_MODES, ids=lambda v: str(v))
async def test_each_hostile_mode_is_refused_with_no_token_spent(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    http: aiohttp.ClientSession,
    modes: dict[str, Any],
    words: str,
) -> None:
    server = auth_server(**modes)
    use_follower(monkeypatch)
    flow = BrowserLogin(
        server.mcp_url,
        settings_for(),
        NoClients(),
        policy=UrlPolicy.for_server(server.mcp_url),
        http=lambda: http,
        notify=lambda text: None,
    )
    with pytest.raises(AuthError) as refused:
        await flow.run()
    assert words.lower() in str(refused.value).lower()
    assert refused.value.next_step  # it says what to do next
    stats = server.stats()
    assert stats["token_exchanges"] == 0
    assert stats["token_requests"] == 0


async def test_a_pasted_redirect_url_completes_the_login(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server()
    shown: list[str] = []
    pasted: asyncio.Queue[str] = asyncio.Queue()

    async def lines() -> AsyncIterator[str]:
        await pasted.put("not a url at all")  # a stray line is refused, the wait goes on
        while True:
            yield await pasted.get()

    urls: asyncio.Queue[str] = asyncio.Queue()

    def notify(text: str) -> None:
        shown.append(text)
        if "http" in text:
            urls.put_nowait(text.splitlines()[-1])

    flow = BrowserLogin(
        server.mcp_url,
        settings_for(open_browser=False),
        NoClients(),
        policy=UrlPolicy.for_server(server.mcp_url),
        http=lambda: http,
        notify=notify,
        pasted_urls=lines,
    )
    login = asyncio.create_task(flow.run())
    url = await asyncio.wait_for(urls.get(), 60)
    # The browser "on another machine": follow /authorize to the redirect, never reach us.
    async with http.get(url, allow_redirects=False) as response:
        assert response.status == 302
        await pasted.put(response.headers["Location"])
    result = await asyncio.wait_for(login, 60)
    assert result.tokens.resource == server.mcp_url
    assert any("paste" in text for text in shown)
    assert server.stats()["token_exchanges"] == 1


def test_the_storm_brake_stops_the_fourth_unfinished_login() -> None:
    now = [0.0]
    brake = LoginBrake(max_starts=3, window_s=300, clock=lambda: now[0])
    browser = OAuthSettings()
    for _ in range(3):
        brake.start("https://mcp.example/mcp", browser)
    with pytest.raises(AuthError, match="none completed"):
        brake.start("https://mcp.example/mcp", browser)
    now[0] = 301.0  # the window slid past them
    brake.start("https://mcp.example/mcp", browser)
    brake.completed()
    for _ in range(3):
        brake.start("https://mcp.example/mcp", browser)


# settings -> (words the brake's refusal must say, the command it must name)
BRAKED_KINDS: list[tuple[OAuthSettings, tuple[str, ...], str]] = [
    (OAuthSettings(), ("browser sign-ins", "browser tab"), "mcp-bridge login URL`"),
    (OAuthSettings(device=True), ("device sign-ins",), "mcp-bridge login URL --device`"),
    (
        OAuthSettings(grant=Grant.CLIENT_CREDENTIALS, client_id="svc"),
        ("client-credentials grants", "none succeeded"),
        "mcp-bridge login URL --grant client-credentials`",
    ),
    (
        OAuthSettings(
            grant=Grant.ENTERPRISE,
            client_id="app",
            idp_issuer="https://idp.example",
            idp_client_id="app",
            idp_client_secret="idp-secret",
            id_token_file="/id-token",
        ),
        ("enterprise grants", "none succeeded"),
        "mcp-bridge login URL --grant enterprise`",
    ),
]


@pytest.mark.parametrize(("settings", "words", "command"), BRAKED_KINDS)
def test_the_storm_brake_speaks_of_the_kind_of_login_it_stops(
    settings: OAuthSettings, words: tuple[str, ...], command: str
) -> None:
    """A device login or a grant without a user opens no browser: the refusal must not
    send the user looking for browser tabs, and the command to try must make that kind."""
    url = "https://mcp.example/mcp"
    brake = LoginBrake(max_starts=1, window_s=300, clock=lambda: 0.0)
    brake.start(url, settings)
    with pytest.raises(AuthError) as braked:
        brake.start(url, settings)
    said = f"{braked.value.what}. {braked.value.next_step}"
    for word in words:
        assert word in said
    assert command.replace("URL", url) in said
    if settings.device or settings.grant.is_machine:
        assert "browser" not in said


async def test_no_token_on_disk_outside_the_vault_nor_in_the_log(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    oauth: OAuthPeers,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    server = auth_server()
    use_follower(monkeypatch)
    monkeypatch.setenv("MCP_BRIDGE_HOME", str(tmp_path))
    credentials = oauth.credentials(server.mcp_url, keyfile_vault(tmp_path), interactive=True)
    client = await oauth.started_client(credentials)
    assert text_of(await client.call("echo")) == "hi"
    tokens = credentials.manager.tokens
    assert tokens is not None
    assert tokens.refresh_token is not None
    secrets = [tokens.access_token, tokens.refresh_token]

    assert bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)}).vault_file.is_file()
    assert_no_token_in_files(tmp_path, secrets, at_least=1)
    assert not any(secret in caplog.text for secret in secrets)


@pytest.mark.peers
async def test_the_typescript_sdk_demo_oauth_server_end_to_end(
    ts_auth_server: TsAuthServer,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    use_follower(monkeypatch)
    credentials = oauth.credentials(ts_auth_server.mcp_url, MemoryVault(), interactive=True)
    client = await oauth.started_client(credentials)
    reply = await client.call("greet", arguments={"name": "bridge"})
    assert "bridge" in text_of(reply)
    assert credentials.logins.count == 1
    tokens = credentials.manager.tokens
    assert tokens is not None
    assert tokens.issuer == ts_auth_server.issuer


@pytest.mark.browser
@needs_chromium
async def test_one_login_through_headless_chromium(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server(consent="page", consent_autosubmit=True)
    use_follower(monkeypatch, CHROMIUM_SCRIPT)
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=True)
    client = await oauth.started_client(credentials)
    assert text_of(await client.call("echo", "from chromium")) == "from chromium"
    stats = server.stats()
    assert (stats["consent_pages"], stats["authorizations"]) == (1, 1)
