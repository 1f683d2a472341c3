"""The OAuth dance across SDKs: the TypeScript SDK's demo server (a second, independent AS
and RS) completes it with the tiny in-test client, and the Python SDK's OAuthClientProvider
(a third-party client) logs in to the test authorization server."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

import aiohttp
import httpx2
import pytest
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)
from pydantic import AnyUrl

from tests.fixtures.auth_server import AuthServerFactory, TsAuthServer
from tests.fixtures.auth_server_client import (
    MCP_HEADERS,
    REDIRECT_URI,
    TinyClient,
    call_tool,
    text_of,
)
from tests.fixtures.mcp_servers import initialize_request

# -- the TypeScript SDK's demo server (second, independent AS + RS) ------------------------


@pytest.mark.peers
async def test_typescript_demo_server_completes_the_dance(
    ts_auth_server: TsAuthServer, http: aiohttp.ClientSession
) -> None:
    server = ts_auth_server
    async with http.post(server.mcp_url, json={}, headers=MCP_HEADERS) as response:
        assert response.status == 401
        challenge = response.headers["WWW-Authenticate"]
    client = TinyClient(http, server)
    prm_url = re.search(r'resource_metadata="([^"]+)"', challenge)
    assert prm_url is not None
    prm = await client.json(prm_url.group(1))
    assert prm["resource"] == server.mcp_url
    assert prm["authorization_servers"] == [server.issuer]
    metadata = await client.json(f"{server.issuer}.well-known/oauth-authorization-server")
    assert metadata["issuer"] == server.issuer
    await client.register()
    redirect = await client.authorize(scope="mcp:tools")  # auto-approves with a 302
    assert redirect["state"] == "st"
    assert "iss" not in redirect  # it does not implement RFC 9207
    tokens = await client.exchange(redirect["code"])
    status, _, result = await call_tool(
        http, server.mcp_url, tokens["access_token"], "greet", {"name": "bridge"}
    )
    assert status == 200, result
    assert "bridge" in text_of(result)


# -- a third-party client: the Python SDK's OAuthClientProvider ---------------------------


class MemoryTokenStorage:
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


@pytest.mark.parametrize("iss_mode", ["correct", "wrong"])
async def test_the_sdk_client_logs_in_and_refuses_a_wrong_iss(
    iss_mode: str, auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    """The fixture speaks OAuth as the SDK's client expects, hostile mode included."""
    server = auth_server() if iss_mode == "correct" else auth_server(iss=iss_mode)
    redirect: dict[str, str] = {}

    async def redirect_handler(url: str) -> None:
        async with http.get(url, allow_redirects=False) as response:
            redirect.update(parse_qsl(urlsplit(response.headers["Location"]).query))

    async def callback_handler() -> AuthorizationCodeResult:
        return AuthorizationCodeResult(
            code=redirect["code"], state=redirect.get("state"), iss=redirect.get("iss")
        )

    storage = MemoryTokenStorage()
    provider = OAuthClientProvider(
        server_url=server.mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="sdk-client",
            redirect_uris=[AnyUrl(REDIRECT_URI)],
            grant_types=["authorization_code", "refresh_token"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )
    initialize = initialize_request(1)
    async with httpx2.AsyncClient(auth=provider, timeout=60) as client:
        if iss_mode == "wrong":
            with pytest.raises(OAuthFlowError, match="iss"):
                await client.post(server.mcp_url, json=initialize, headers=MCP_HEADERS)
            assert server.stats()["token_exchanges"] == 0
            return
        response = await client.post(server.mcp_url, json=initialize, headers=MCP_HEADERS)
    assert response.status_code == 200, response.text
    assert response.json()["result"]["serverInfo"]["name"] == "mcp-bridge-demo-protected"
    assert storage.tokens is not None
    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"], stats["token_exchanges"]) == (1, 1, 1)
