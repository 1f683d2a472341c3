"""Microsoft Entra ID's two rules (docs/oauth-in-the-wild.md §6), met with no flag: an
`invalid_target` refusal of the RFC 8707 `resource` gets the request once more without it,
remembered per issuer; and every refresh grant names the granted scope. Sans-I/O first, then
against the fixture AS in its `rejects_resource` and `refresh_requires_scope` modes."""

from __future__ import annotations

import time
from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from mcp_bridge.auth.auth_records import put_client, put_tokens, read_stored_client
from mcp_bridge.auth.authorize import (
    build_authorization_request,
    parse_callback_query,
    validate_callback,
)
from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.discovery import AuthorizationContext, AuthServerQuirks, discover
from mcp_bridge.auth.dynamic_registration import ClientMetadata
from mcp_bridge.auth.errors import AuthError, AuthorizationDenied
from mcp_bridge.auth.http_step import HttpResponse, run_step
from mcp_bridge.auth.registration import obtain_client
from mcp_bridge.auth.token_endpoint import exchange_code, refresh_tokens
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.demo.auth_modes import BASE_SCOPE
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.auth_server_client import call_tool
from tests.fixtures.example_login import AS, ISSUER, MCP, NOW, PENDING, PUBLIC, REDIRECT, TOKENS
from tests.fixtures.http_steps import finish
from tests.fixtures.oauth_client import OAuthPeers, use_follower

NO_RESOURCE = AuthServerQuirks(send_resource=False)
TOKEN_REPLY = HttpResponse.of_json({"access_token": "new", "token_type": "Bearer"})
INVALID_TARGET = HttpResponse.of_json(
    {"error": "invalid_target", "error_description": "AADSTS9010010: no such resource"}, 400
)
CONTEXT = AuthorizationContext(MCP, ISSUER, AS, None)
POLICY = UrlPolicy.for_server(MCP)


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# -- sans-I/O: the authorization request and its callback -------------------------------


def test_the_authorization_request_names_the_resource_unless_the_issuer_refused_it() -> None:
    default = build_authorization_request(
        CONTEXT, PUBLIC, redirect_uri=REDIRECT, scopes=("files:read",), policy=POLICY
    )
    assert query_of(default.url)["resource"] == [MCP]
    assert default.pending.quirks.send_resource

    without = build_authorization_request(
        CONTEXT,
        PUBLIC,
        redirect_uri=REDIRECT,
        scopes=("files:read",),
        policy=POLICY,
        quirks=NO_RESOURCE,
    )
    assert "resource" not in query_of(without.url)
    assert query_of(without.url)["scope"] == ["files:read"]  # Entra binds through scope
    assert without.pending.resource == MCP  # the tokens are still for this server only
    # ... and the code exchange that follows leaves it out too.
    exchange = next(exchange_code(AS, PUBLIC, without.pending, "the-code", now=NOW))
    assert "resource" not in exchange.form()


def test_an_invalid_target_error_redirect_is_recognisable() -> None:
    query = {"state": PENDING.state, "error": "invalid_target", "error_description": "AADSTS"}
    with pytest.raises(AuthorizationDenied) as refused:
        validate_callback(PENDING, query)
    assert refused.value.refuses_resource
    assert "invalid_target" in str(refused.value)
    with pytest.raises(AuthorizationDenied) as denied:
        validate_callback(PENDING, {"state": PENDING.state, "error": "access_denied"})
    assert not denied.value.refuses_resource


# -- sans-I/O: the token endpoint -------------------------------------------------------


def test_a_code_exchange_refused_for_its_resource_is_sent_once_more_without_it() -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "the-code", now=NOW)
    assert next(step).form()["resource"] == MCP
    again = step.send(INVALID_TARGET)
    assert "resource" not in again.form()
    assert again.form()["code"] == "the-code"
    tokens = finish(step, TOKEN_REPLY)
    assert tokens.quirks == NO_RESOURCE
    assert tokens.resource == MCP


def test_a_refresh_refused_for_its_resource_is_sent_once_more_without_it() -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    assert next(step).form()["resource"] == MCP
    assert "resource" not in step.send(INVALID_TARGET).form()
    fresh = finish(step, TOKEN_REPLY)
    assert fresh.quirks == NO_RESOURCE
    # The next refresh starts without it.
    assert "resource" not in next(refresh_tokens(AS, PUBLIC, fresh, now=NOW)).form()


def test_invalid_target_without_a_resource_sent_is_an_error_not_a_loop() -> None:
    step = refresh_tokens(AS, PUBLIC, replace(TOKENS, quirks=NO_RESOURCE), now=NOW)
    next(step)
    with pytest.raises(AuthError, match="invalid_target"):
        step.send(INVALID_TARGET)
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    step.send(INVALID_TARGET)
    with pytest.raises(AuthError, match="invalid_target"):  # refused twice: said, not retried
        step.send(INVALID_TARGET)


def test_every_refresh_names_the_granted_scope_or_the_narrower_one_asked() -> None:
    granted = replace(TOKENS, scopes=("files:read", "files:write"))
    assert next(refresh_tokens(AS, PUBLIC, granted, now=NOW)).form()["scope"] == (
        "files:read files:write"
    )
    narrowed = refresh_tokens(AS, PUBLIC, granted, now=NOW, scopes=("files:read",))
    assert next(narrowed).form()["scope"] == "files:read"
    nothing = replace(TOKENS, scopes=())  # a grant with no scope: none to name
    assert "scope" not in next(refresh_tokens(AS, PUBLIC, nothing, now=NOW)).form()


def test_quirks_read_back_and_records_from_before_send_resource() -> None:
    assert AuthServerQuirks.from_json(NO_RESOURCE.to_json()) == NO_RESOURCE
    assert AuthServerQuirks.from_json({"token_body": "json"}).send_resource  # older record
    assert AuthServerQuirks.from_json({"send_resource": "no"}).send_resource  # damaged


# -- end to end: the fixture AS ---------------------------------------------------------


async def test_refresh_against_an_as_that_requires_scope_on_refresh(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server(refresh_requires_scope=True)
    use_follower(monkeypatch)
    credentials = oauth.credentials(
        server.mcp_url, MemoryVault(), interactive=True, background_refresh=False
    )
    await credentials.login()
    granted = credentials.manager.tokens
    assert granted is not None

    fresh = await credentials.manager.refresh()

    last = server.stats()["last"]["token_request"]
    assert (last["grant_type"], last["scope"]) == ("refresh_token", " ".join(granted.scopes))
    assert fresh.scopes == granted.scopes
    assert server.stats()["refreshes"] == 1


async def authorize_by_hand(
    http: aiohttp.ClientSession,
    context: AuthorizationContext,
    client: ClientRegistration,
    quirks: AuthServerQuirks,
) -> tuple[str, TokenSet]:
    """The browser's part (the fixture consents at once) and the code exchange, as
    BrowserLogin.run does them; raises what validate_callback raises."""
    request = build_authorization_request(
        context,
        client,
        redirect_uri=client.redirect_uris[0],
        scopes=(BASE_SCOPE,),
        policy=UrlPolicy.for_server(context.resource),
        quirks=quirks,
    )
    async with http.get(request.url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    code = validate_callback(request.pending, parse_callback_query(urlsplit(location).query))
    step = exchange_code(context.auth_server, client, request.pending, code, now=time.time())
    policy = UrlPolicy.for_server(context.resource)
    return request.url, await run_step(step, http, policy=policy)


async def test_an_as_that_refuses_the_resource_everywhere(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession
) -> None:
    server = auth_server(rejects_resource=True)
    policy = UrlPolicy.for_server(server.mcp_url)
    context = await run_step(discover(server.mcp_url, None, policy), http, policy=policy)
    metadata = ClientMetadata(redirect_uris=(f"{REDIRECT}",), scope=BASE_SCOPE)
    registering = obtain_client(context.auth_server, metadata, now=time.time())
    client = await run_step(registering, http, policy=policy)

    # /authorize answers the resource with an invalid_target error redirect ...
    with pytest.raises(AuthorizationDenied) as refused:
        await authorize_by_hand(http, context, client, AuthServerQuirks())
    assert refused.value.refuses_resource
    # ... so the login asks once more without it (login.py's part), and gets a code.
    url, tokens = await authorize_by_hand(http, context, client, NO_RESOURCE)
    assert "resource=" not in url
    assert server.stats()["last"]["token_request"]["resource"] is None
    assert tokens.quirks == NO_RESOURCE
    assert tokens.resource == server.mcp_url
    status, _, result = await call_tool(http, server.mcp_url, tokens.access_token, "whoami", {})
    assert status == 200, result

    # The vault keeps it beside the registration: the next login starts without it.
    vault = MemoryVault()
    async with vault.transaction() as txn:
        put_client(txn, client)
        put_tokens(txn, tokens, received_at=time.time())
        stored = read_stored_client(txn, context.issuer)
    assert stored is not None
    assert stored.quirks == NO_RESOURCE

    # A refresh from tokens that do not know it (a vault from before) learns it at /token.
    refreshing = refresh_tokens(
        context.auth_server, client, replace(tokens, quirks=AuthServerQuirks()), now=time.time()
    )
    fresh = await run_step(refreshing, http, policy=policy)
    assert fresh.quirks == NO_RESOURCE
    stats = server.stats()
    assert stats["refreshes"] == 1
    assert stats["resource_refusals"] == 2  # one at /authorize, one at /token
    status, _, result = await call_tool(http, server.mcp_url, fresh.access_token, "whoami", {})
    assert status == 200, result
