"""The auth steps composed against the Python SDK's own authorization server and resource
server (mcp.server.auth), each on its own 127.0.0.1 port, so discovery crosses origins:
401 -> PRM -> AS metadata -> DCR -> authorize (a headless "browser" follows the 302) ->
callback validation -> code exchange -> authorized MCP request -> refresh -> revocation."""

from __future__ import annotations

import asyncio
import secrets
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
import pytest
import uvicorn
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    IdentityAssertionParams,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.routes import create_auth_routes
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions, RevocationOptions
from mcp.server.mcpserver import MCPServer
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from starlette.applications import Starlette

from mcp_bridge.auth.authorize import (
    build_authorization_request,
    parse_callback_query,
    validate_callback,
)
from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.discovery import AuthorizationContext, discover
from mcp_bridge.auth.dynamic_registration import ClientMetadata
from mcp_bridge.auth.errors import AuthError, LoginRequired
from mcp_bridge.auth.http_step import run_step
from mcp_bridge.auth.registration import obtain_client
from mcp_bridge.auth.scopes import initial_scopes, with_offline_access
from mcp_bridge.auth.token_endpoint import exchange_code, refresh_tokens, revoke_token
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.http_client import client_session
from tests.fixtures.mcp_servers import initialize_request


@dataclass
class AutoApprove:
    """An in-memory OAuthAuthorizationServerProvider that consents at once and rotates
    refresh tokens; `iss` goes on the redirect (RFC 9207), as the SDK leaves that to us."""

    issuer: str
    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    refresh: dict[str, RefreshToken] = field(default_factory=dict)
    access: dict[str, AccessToken] = field(default_factory=dict)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        assert client_info.client_id is not None
        self.clients[client_info.client_id] = client_info

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        assert client.client_id is not None
        code = AuthorizationCode(
            code=secrets.token_urlsafe(16),
            scopes=params.scopes or ["mcp"],
            expires_at=time.time() + 300,
            client_id=client.client_id,
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        self.codes[code.code] = code
        return construct_redirect_uri(
            str(params.redirect_uri), code=code.code, state=params.state, iss=self.issuer
        )

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        del self.codes[authorization_code.code]
        return self._mint(
            authorization_code.client_id, authorization_code.scopes, authorization_code.resource
        )

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        return self.refresh.get(refresh_token)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        del self.refresh[refresh_token.token]  # rotation: the old one is spent
        return self._mint(
            refresh_token.client_id, scopes or refresh_token.scopes, refresh_token.resource
        )

    async def load_access_token(self, token: str) -> AccessToken | None:
        return self.access.get(token)

    async def revoke_token(self, token: AccessToken | RefreshToken) -> None:
        self.access.pop(token.token, None)
        self.refresh.pop(token.token, None)

    async def exchange_identity_assertion(
        self, client: OAuthClientInformationFull, params: IdentityAssertionParams
    ) -> OAuthToken:
        raise NotImplementedError("SEP-990 is not part of these tests")

    def _mint(self, client_id: str, scopes: list[str], resource: str | None) -> OAuthToken:
        access = AccessToken(
            token=secrets.token_urlsafe(16),
            client_id=client_id,
            scopes=scopes,
            expires_at=int(time.time()) + 3600,
            resource=resource,
        )
        refresh = RefreshToken(
            token=secrets.token_urlsafe(16), client_id=client_id, scopes=scopes, resource=resource
        )
        self.access[access.token] = access
        self.refresh[refresh.token] = refresh
        return OAuthToken(
            access_token=access.token,
            expires_in=3600,
            scope=" ".join(scopes),
            refresh_token=refresh.token,
        )


class Verifier:
    def __init__(self, provider: AutoApprove) -> None:
        self.provider = provider

    async def verify_token(self, token: str) -> AccessToken | None:
        return await self.provider.load_access_token(token)


def _bound_socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    return sock


@dataclass
class Deployment:
    mcp_url: str
    issuer: str
    provider: AutoApprove


@pytest.fixture
async def sdk_servers() -> AsyncIterator[Deployment]:
    as_sock, rs_sock = _bound_socket(), _bound_socket()
    issuer = f"http://127.0.0.1:{as_sock.getsockname()[1]}"
    mcp_url = f"http://127.0.0.1:{rs_sock.getsockname()[1]}/mcp"
    provider = AutoApprove(issuer)
    settings = AuthSettings(
        issuer_url=issuer,  # type: ignore[arg-type]
        resource_server_url=mcp_url,  # type: ignore[arg-type]
        required_scopes=["mcp"],
        validate_token_resource=True,
    )
    as_app = Starlette(
        routes=create_auth_routes(
            provider,
            issuer_url=settings.issuer_url,  # built from a str: no trailing slash
            client_registration_options=ClientRegistrationOptions(
                enabled=True, valid_scopes=["mcp", "offline_access"], default_scopes=["mcp"]
            ),
            revocation_options=RevocationOptions(enabled=True),
        )
    )
    rs_app = MCPServer(
        "protected", token_verifier=Verifier(provider), auth=settings
    ).streamable_http_app(json_response=True)
    servers = [
        uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        for app in (as_app, rs_app)
    ]
    tasks = [
        asyncio.create_task(server.serve(sockets=[sock]))
        for server, sock in zip(servers, (as_sock, rs_sock), strict=True)
    ]
    try:
        async with asyncio.timeout(30):
            # uvicorn offers a flag, not an event, for "listening".
            while not all(server.started for server in servers):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        yield Deployment(mcp_url, issuer, provider)
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*tasks)
        as_sock.close()
        rs_sock.close()


INITIALIZE = initialize_request(1)
MCP_HEADERS = {"Accept": "application/json, text/event-stream"}


@dataclass
class LoggedIn:
    policy: UrlPolicy
    context: AuthorizationContext
    client: ClientRegistration
    tokens: TokenSet


async def log_in(sdk_servers: Deployment, http: aiohttp.ClientSession) -> LoggedIn:
    """401 -> discovery -> DCR -> authorize -> callback -> code exchange, as a login does."""
    policy = UrlPolicy.for_server(sdk_servers.mcp_url)
    redirect_uri = "http://127.0.0.1:33418/callback"  # never listened on: we read the 302
    async with http.post(sdk_servers.mcp_url, json=INITIALIZE, headers=MCP_HEADERS) as first:
        assert first.status == 401
        challenge = BearerChallenge.from_header(first.headers.get("WWW-Authenticate"))
    assert challenge is not None
    assert challenge.resource_metadata is not None

    context = await run_step(discover(sdk_servers.mcp_url, challenge, policy), http, policy=policy)
    assert context.issuer == sdk_servers.issuer
    assert context.resource == sdk_servers.mcp_url
    assert not context.is_legacy

    scopes = with_offline_access(
        initial_scopes(context.challenged_scopes, context.resource_metadata) or ("mcp",),
        context.auth_server,
    )
    # Some ASes (the SDK's among them) only grant scopes named at registration.
    me = ClientMetadata(redirect_uris=(redirect_uri,), scope=" ".join(scopes))
    client = await run_step(
        obtain_client(context.auth_server, me, now=time.time()), http, policy=policy
    )
    assert client.method is RegistrationMethod.DCR
    assert client.client_id in sdk_servers.provider.clients

    request = build_authorization_request(
        context, client, redirect_uri=redirect_uri, scopes=scopes, policy=policy
    )
    async with http.get(request.url, allow_redirects=False) as consent:
        assert consent.status == 302, await consent.text()
        location = consent.headers["Location"]
    assert location.startswith(redirect_uri + "?")
    code = validate_callback(request.pending, parse_callback_query(location.split("?", 1)[1]))

    tokens = await run_step(
        exchange_code(context.auth_server, client, request.pending, code, now=time.time()),
        http,
        policy=policy,
    )
    return LoggedIn(policy, context, client, tokens)


async def test_discovery_registration_login_and_refresh_compose(sdk_servers: Deployment) -> None:
    async with client_session(timeout_s=60) as http:
        session = await log_in(sdk_servers, http)
        tokens, metadata = session.tokens, session.context.auth_server
        assert tokens.refresh_token is not None
        stored = sdk_servers.provider.access[tokens.access_token]
        assert stored.resource == sdk_servers.mcp_url  # RFC 8707: the audience is the server
        assert set(stored.scopes) == {"mcp", "offline_access"}

        headers = {**MCP_HEADERS, "Authorization": tokens.authorization_header()}
        async with http.post(sdk_servers.mcp_url, json=INITIALIZE, headers=headers) as authed:
            assert authed.status == 200, await authed.text()

        fresh = await run_step(
            refresh_tokens(metadata, session.client, tokens, now=time.time()),
            http,
            policy=session.policy,
        )
        assert fresh.access_token != tokens.access_token
        assert fresh.refresh_token not in (None, tokens.refresh_token)
        assert sdk_servers.provider.access[fresh.access_token].resource == sdk_servers.mcp_url

        with pytest.raises(LoginRequired):  # the rotated-out refresh token is spent
            await run_step(
                refresh_tokens(metadata, session.client, tokens, now=time.time()),
                http,
                policy=session.policy,
            )


@pytest.mark.xfail(
    strict=True,
    raises=AuthError,
    reason="mcp 2.3.0 RevocationRequest declares `client_secret: str | None` without a "
    "default, so /revoke answers invalid_request to every public client",
)
async def test_public_client_revokes_its_refresh_token(sdk_servers: Deployment) -> None:
    async with client_session(timeout_s=60) as http:
        session = await log_in(sdk_servers, http)
        revoked = await run_step(
            revoke_token(session.context.auth_server, session.client, session.tokens),
            http,
            policy=session.policy,
        )
    assert revoked
    assert session.tokens.refresh_token not in sdk_servers.provider.refresh


async def test_server_without_prm_is_discovered_by_the_2025_03_26_rules(
    sdk_servers: Deployment,
) -> None:
    """An MCP endpoint on the AS's own origin, with no PRM anywhere: discovery falls back to
    the metadata at the origin, which the SDK AS serves with the origin as issuer."""
    mcp_url = f"{sdk_servers.issuer}/mcp"
    policy = UrlPolicy.for_server(mcp_url)
    async with client_session(timeout_s=60) as http:
        context = await run_step(discover(mcp_url, None, policy), http, policy=policy)
    assert context.is_legacy
    assert context.issuer == sdk_servers.issuer
    assert not context.auth_server.is_guessed
    assert context.auth_server.token_endpoint == f"{sdk_servers.issuer}/token"
    assert context.auth_server.code_challenge_methods_supported == ("S256",)
