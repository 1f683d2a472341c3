"""The test authorization server's modes, each made observable by a tiny in-test client:
the hostile ones (a wrong or missing iss, metadata that lies or redirects into a private
network, a slow token endpoint) and the others (any loopback port, an SSE resource server,
a secret forced on a public client, no refresh tokens)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import aiohttp
import pytest

from mcp_bridge.demo.auth_modes import PRIVATE_REDIRECT_HOST, WRONG_ISSUER
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.auth_server_client import REDIRECT_URI, TinyClient, call_tool, text_of

# -- hostile modes ------------------------------------------------------------------------


async def test_hostile_metadata_prm_iss_and_token_modes_are_observable(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server(
        iss="wrong",
        metadata_issuer_mismatch=True,
        no_pkce_methods=True,
        javascript_authorization_endpoint=True,
        prm_resource_mismatch=True,
        token_status=500,
    )
    client = TinyClient(http, server)
    metadata = await client.json(server.as_metadata_url)
    assert metadata["issuer"] == WRONG_ISSUER != server.issuer
    assert "code_challenge_methods_supported" not in metadata
    assert metadata["authorization_endpoint"].startswith("javascript:")
    prm = await client.json(server.prm_url)
    assert prm["resource"] != server.mcp_url
    await client.register()
    assert (await client.authorize())["iss"] == WRONG_ISSUER
    async with http.post(f"{server.issuer}/token", data={"grant_type": "x"}) as response:
        assert response.status == 500


async def test_missing_iss_while_advertising_support(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server(iss="missing")
    client = TinyClient(http, server)
    assert (await client.json(server.as_metadata_url))[
        "authorization_response_iss_parameter_supported"
    ]
    await client.register()
    redirect = await client.authorize()
    assert "code" in redirect
    assert "iss" not in redirect


async def test_metadata_urls_redirect_into_a_private_network(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server(metadata_redirects_to_private=True)
    for url in (server.prm_url, server.as_metadata_url):
        async with http.get(url, allow_redirects=False) as response:
            assert response.status == 302
            assert urlsplit(response.headers["Location"]).hostname == PRIVATE_REDIRECT_HOST


async def test_slow_token_endpoint_outlasts_a_client_timeout(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server(token_delay_s=60.0)
    with pytest.raises(TimeoutError):
        async with http.post(
            f"{server.issuer}/token",
            data={"grant_type": "refresh_token"},
            timeout=aiohttp.ClientTimeout(total=1.0),
        ):
            pass
    assert server.stats()["token_requests"] == 1


async def test_redirect_uri_port_must_match_unless_any_loopback_port_is_allowed(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    for any_port, expected in ((False, 400), (True, 302)):
        server = auth_server(loopback_any_port=True) if any_port else auth_server()
        client = TinyClient(http, server)
        await client.register()  # registers REDIRECT_URI, port 8976
        client.redirect_uri = "http://127.0.0.1:8977/callback"
        async with http.get(client.authorization_url("st"), allow_redirects=False) as response:
            assert response.status == expected, await response.text()
        if any_port:
            back = response.headers["Location"]
            assert back.startswith("http://127.0.0.1:8977/callback?")
            code = dict(parse_qsl(urlsplit(back).query))["code"]
            assert (await client.exchange(code))["token_type"] == "Bearer"
        client.redirect_uri = "http://127.0.0.1:8977/elsewhere"  # only the port may differ
        async with http.get(client.authorization_url("st"), allow_redirects=False) as response:
            assert response.status == 400


async def test_sse_mode_resource_server(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server(json_response=False)
    tokens = await TinyClient(http, server).login()
    status, _, result = await call_tool(http, server.mcp_url, tokens["access_token"], "whoami", {})
    assert status == 200
    assert "mcp" in text_of(result)


async def test_registration_can_force_a_secret_on_a_public_client(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server(registration_forces_secret=True)
    client = TinyClient(http, server)
    body = {
        "client_name": "asks-for-none",
        "redirect_uris": [REDIRECT_URI],
        "grant_types": ["authorization_code", "refresh_token"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    async with http.post(f"{server.issuer}/register", json=body) as response:
        registered = await response.json()
    assert registered["token_endpoint_auth_method"] == "client_secret_post"
    assert registered["client_secret"]
    client.client_id = registered["client_id"]
    code = (await client.authorize())["code"]
    form = {"code": code, "redirect_uri": REDIRECT_URI, "code_verifier": client.verifier}
    status, error = await client.token(grant_type="authorization_code", **form)
    assert (status, error["error"]) == (401, "invalid_client")  # the secret is now required
    status, tokens = await client.token(
        grant_type="authorization_code", client_secret=registered["client_secret"], **form
    )
    assert status == 200, tokens


async def test_no_refresh_token_mode(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    tokens = await TinyClient(http, auth_server(issue_refresh_tokens=False)).login()
    assert tokens["access_token"]
    assert "refresh_token" not in tokens
