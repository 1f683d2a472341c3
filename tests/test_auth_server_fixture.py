"""The test authorization server itself: a full OAuth dance by a tiny in-test client
(aiohttp, no bridge code but the loopback listener), its token families, its consent
page, and a stopped server that leaves no process. Its modes are tested in
test_auth_server_fixture_modes.py; the SDKs against it in test_auth_server_fixture_sdks.py."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from mcp_bridge.auth.loopback import CallbackQuery, LoopbackListener
from mcp_bridge.demo.auth_modes import ADMIN_SCOPE, BASE_SCOPE, AuthServerModes
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.auth_server_client import (
    MCP_HEADERS,
    REDIRECT_URI,
    TinyClient,
    call_tool,
    text_of,
)

# -- the well-behaved server --------------------------------------------------------------


async def test_full_discovery_registration_pkce_and_token_dance(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server()
    async with http.post(server.mcp_url, json={}, headers=MCP_HEADERS) as response:
        assert response.status == 401
        challenge = response.headers["WWW-Authenticate"]
    prm_url = re.search(r'resource_metadata="([^"]+)"', challenge)
    assert prm_url is not None
    assert prm_url.group(1) == server.prm_url
    client = TinyClient(http, server)
    prm = await client.json(prm_url.group(1))
    assert prm["resource"] == server.mcp_url
    assert prm["authorization_servers"] == [server.issuer]
    assert urlsplit(server.issuer).port != urlsplit(server.mcp_url).port  # cross-origin
    metadata = await client.json(server.as_metadata_url)
    assert metadata["issuer"] == server.issuer  # exact string, no trailing slash
    assert metadata["code_challenge_methods_supported"] == ["S256"]
    assert metadata["authorization_response_iss_parameter_supported"] is True

    async with LoopbackListener() as listener:
        client.redirect_uri = listener.redirect_uri
        await client.register()
        waiting = listener.expect("state-1", lambda q: q)
        # Follow the redirect like a browser would: it lands on the real listener.
        async with http.get(client.authorization_url("state-1")) as landed:
            assert landed.status == 200
        query: CallbackQuery = await waiting.result()
    assert query["iss"] == server.issuer  # RFC 9207
    tokens = await client.exchange(query["code"])
    assert tokens["token_type"] == "Bearer"
    assert tokens["refresh_token"]

    status, _, result = await call_tool(
        http, server.mcp_url, tokens["access_token"], "echo", {"text": "hi"}
    )
    assert status == 200
    assert text_of(result) == "hi"
    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"], stats["token_exchanges"]) == (1, 1, 1)
    assert stats["last"]["authorize"]["resource"] == server.mcp_url
    assert stats["last"]["registration"]["application_type"] == "native"
    assert stats["last"]["token_request"]["has_code_verifier"] is True


async def test_a_code_is_good_once_and_needs_the_verifier(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    client = TinyClient(http, auth_server())
    await client.register()
    code = (await client.authorize())["code"]
    status, error = await client.token(
        grant_type="authorization_code",
        code=code,
        redirect_uri=REDIRECT_URI,
        code_verifier="not-the-verifier-" + "x" * 40,
    )
    assert (status, error["error"]) == (400, "invalid_grant")
    await client.exchange(code)
    with pytest.raises(AssertionError):
        await client.exchange(code)


async def test_reset_forgets_clients_and_zeroes_counters(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server()
    await TinyClient(http, server).login()
    assert server.stats()["token_exchanges"] == 1
    server.reset()
    stats = server.stats()
    assert (stats["clients"], stats["token_exchanges"], stats["live_families"]) == (0, 0, 0)


async def test_refresh_rotates_and_a_reused_refresh_token_revokes_the_family(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server()
    client = TinyClient(http, server)
    first = await client.login()
    status, second = await client.refresh(first["refresh_token"])
    assert status == 200
    assert second["refresh_token"] != first["refresh_token"]
    assert server.stats()["last"]["token_request"]["resource"] == server.mcp_url
    # The refreshed token keeps the grant's audience although the SDK drops `resource`.
    status, _, _ = await call_tool(
        http, server.mcp_url, second["access_token"], "echo", {"text": "x"}
    )
    assert status == 200

    status, error = await client.refresh(first["refresh_token"])  # spent: reuse
    assert (status, error["error"]) == (400, "invalid_grant")
    status, error = await client.refresh(second["refresh_token"])  # its family is dead
    assert (status, error["error"]) == (400, "invalid_grant")
    status, _, _ = await call_tool(
        http, server.mcp_url, second["access_token"], "echo", {"text": "x"}
    )
    assert status == 401
    stats = server.stats()
    assert (stats["refreshes"], stats["reuse_detections"], stats["live_families"]) == (1, 1, 0)


async def test_revocation_ends_the_grant(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server()
    client = TinyClient(http, server)
    tokens = await client.login()
    form = {"token": tokens["refresh_token"], "client_id": client.client_id}
    async with http.post(f"{server.issuer}/revoke", data=form) as response:
        assert response.status == 200
    status, _, _ = await call_tool(
        http, server.mcp_url, tokens["access_token"], "echo", {"text": "x"}
    )
    assert status == 401
    assert server.stats()["revocations"] == 1


async def test_short_lived_access_tokens_expire(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    import asyncio

    server = auth_server(access_ttl_s=1.0)
    client = TinyClient(http, server)
    tokens = await client.login()
    assert tokens["expires_in"] == 1
    await asyncio.sleep(2.5)
    status, challenge, _ = await call_tool(
        http, server.mcp_url, tokens["access_token"], "echo", {"text": "x"}
    )
    assert status == 401
    assert 'error="invalid_token"' in challenge
    status, fresh = await client.refresh(tokens["refresh_token"])
    assert status == 200
    status, _, _ = await call_tool(
        http, server.mcp_url, fresh["access_token"], "echo", {"text": "x"}
    )
    assert status == 200


async def test_step_up_tool_answers_403_with_the_scope_then_works_with_it(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server()
    client = TinyClient(http, server)
    narrow = await client.login(scope=BASE_SCOPE)
    status, challenge, _ = await call_tool(
        http, server.mcp_url, narrow["access_token"], "admin_echo", {"text": "x"}
    )
    assert status == 403
    assert 'error="insufficient_scope"' in challenge
    assert f'scope="{BASE_SCOPE} {ADMIN_SCOPE}"' in challenge
    assert f'resource_metadata="{server.prm_url}"' in challenge
    wide = await client.login(scope=f"{BASE_SCOPE} {ADMIN_SCOPE}")
    status, _, result = await call_tool(
        http, server.mcp_url, wide["access_token"], "admin_echo", {"text": "x"}
    )
    assert status == 200
    assert text_of(result) == "admin: x"
    assert server.stats()["step_up_challenges"] == 1


# -- consent page ---------------------------------------------------------------------------


async def test_consent_page_allows_and_denies(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server(consent="page")
    client = TinyClient(http, server)
    await client.register()
    for action in ("allow", "deny"):
        async with http.get(client.authorization_url(f"s-{action}"), allow_redirects=False) as r:
            assert r.status == 302
            consent_url = r.headers["Location"]
        assert consent_url.startswith(f"{server.issuer}/consent?id=")
        async with http.get(consent_url) as page:
            body = await page.text()
        assert "<form id='allow'" in body
        assert "<script>" not in body  # no auto-submit unless asked
        consent_id = dict(parse_qsl(urlsplit(consent_url).query))["id"]
        form = {"id": consent_id, "action": action}
        async with http.post(f"{server.issuer}/consent", data=form, allow_redirects=False) as r:
            assert r.status == 303
            back = dict(parse_qsl(urlsplit(r.headers["Location"]).query))
        assert back["state"] == f"s-{action}"
        assert back["iss"] == server.issuer
        if action == "allow":
            assert "code" in back
        else:
            assert back["error"] == "access_denied"
    async with http.get(f"{consent_url}&autosubmit=1") as page:
        assert page.status == 400  # used up
    stats = server.stats()
    assert (stats["consent_pages"], stats["authorizations"], stats["denials"]) == (2, 1, 1)


def test_stopped_server_leaves_no_process(auth_server_logs: Path) -> None:
    server = AuthServer.start(AuthServerModes(), auth_server_logs)
    assert server.process.poll() is None
    server.stop()
    assert server.process.poll() is not None
