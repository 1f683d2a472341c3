"""The test authorization server itself: a full OAuth dance by a tiny in-test client
(aiohttp, no bridge code but the loopback listener), its token families, and each
hostile mode made observable."""

from __future__ import annotations

import re
from pathlib import Path
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

from mcp_bridge.auth.loopback import CallbackQuery, LoopbackListener
from mcp_bridge.demo.auth_modes import (
    ADMIN_SCOPE,
    BASE_SCOPE,
    PRIVATE_REDIRECT_HOST,
    WRONG_ISSUER,
    AuthServerModes,
)
from tests.fixtures.auth_server import AuthServer, AuthServerFactory, TsAuthServer
from tests.fixtures.auth_server_client import (
    MCP_HEADERS,
    REDIRECT_URI,
    TinyClient,
    call_tool,
    text_of,
)
from tests.fixtures.mcp_servers import initialize_request

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


def test_stopped_server_leaves_no_process(auth_server_logs: Path) -> None:
    server = AuthServer.start(AuthServerModes(), auth_server_logs)
    assert server.process.poll() is None
    server.stop()
    assert server.process.poll() is not None


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
