"""A server with static bearer tokens and no OAuth: 401 without WWW-Authenticate, protected-
resource metadata that names no authorization server, no registration endpoint. No real
peer here behaves so; a scripted aiohttp server (tests/fixtures/hostile_server.py) plays it.
The login must say what to do: pass the token with --header, not "tell the server's owner"
about a `resource` field."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp import web

from mcp_bridge.auth.discovery import discover
from mcp_bridge.auth.dynamic_registration import ClientMetadata, register_client
from mcp_bridge.auth.errors import (
    AuthError,
    AuthResponseInvalid,
    NoAuthorizationServer,
    RegistrationFailed,
)
from mcp_bridge.auth.http_step import HttpResponse, run_step
from mcp_bridge.auth.login import BrowserLogin
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.urlpolicy import UrlPolicy
from tests.fixtures.hostile_server import PrmOf, serving, static_token_server
from tests.fixtures.oauth_client import NoClients, settings_for

REDIRECT = "http://127.0.0.1:33418/callback"

NO_AS_VARIANTS: dict[str, PrmOf] = {
    "no authorization_servers": lambda url: {
        "resource": url,
        "bearer_methods_supported": ["header"],
    },
    "an empty list": lambda url: {"resource": url, "authorization_servers": []},
    "a resource that is no URL": lambda url: {"resource": "urn:example:api"},
    "another server's resource": lambda url: {"resource": "https://elsewhere.example/mcp"},
}


def silent_login(url: str, http: aiohttp.ClientSession) -> BrowserLogin:
    """A login that fails the test if it ever shows the user anything."""
    return BrowserLogin(
        url,
        settings_for(open_browser=False),
        NoClients(),
        policy=UrlPolicy.for_server(url),
        http=lambda: http,
        notify=lambda text: pytest.fail(f"nothing to show: {text}"),
    )


@pytest.mark.parametrize("prm_of", NO_AS_VARIANTS.values(), ids=NO_AS_VARIANTS.keys())
async def test_discovery_says_the_server_takes_a_static_token(
    http: aiohttp.ClientSession, prm_of: PrmOf
) -> None:
    async with static_token_server(prm_of) as server:
        policy = UrlPolicy.for_server(server.url)
        with pytest.raises(NoAuthorizationServer) as refused:
            await run_step(discover(server.url, None, policy), http, policy=policy)
    message = str(refused.value)
    assert "static token" in message
    assert "names no authorization server" in message
    assert "--header 'Authorization: Bearer <token>'" in refused.value.next_step
    assert '"resource"' not in message  # not the field the document got wrong


async def test_the_login_ends_with_that_message_and_asks_nothing_else(
    http: aiohttp.ClientSession,
) -> None:
    async with static_token_server(NO_AS_VARIANTS["no authorization_servers"]) as server:
        flow = silent_login(server.url, http)
        with pytest.raises(AuthError, match="--header 'Authorization: Bearer"):
            await flow.run()
        methods = {method for method, _, _ in server.requests}
    assert methods == {"GET"}  # only the metadata was read: nothing registered, nothing sent


async def test_metadata_that_names_an_authorization_server_is_still_held_to_rfc_9728(
    http: aiohttp.ClientSession,
) -> None:
    def prm_of(url: str) -> dict[str, Any]:
        return {"resource": "https://elsewhere.example/mcp", "authorization_servers": [url]}

    async with static_token_server(prm_of) as server:
        policy = UrlPolicy.for_server(server.url)
        with pytest.raises(AuthResponseInvalid, match="RFC 9728"):
            await run_step(discover(server.url, None, policy), http, policy=policy)


async def test_a_server_that_publishes_no_metadata_at_all_gets_the_static_token_message(
    http: aiohttp.ClientSession,
) -> None:
    """No PRM, no AS metadata: the 2025-03-26 default endpoints are guessed, and /register
    is not there either. The message is the static token's, then --client-id."""
    async with serving(lambda request, body: _not_found_but_mcp(request)) as server:
        flow = silent_login(server.url, http)
        with pytest.raises(NoAuthorizationServer, match="publishes no OAuth metadata") as refused:
            await flow.run()
        posts = [body for method, _, body in server.requests if method == "POST"]
    assert "static token" in str(refused.value)
    assert refused.value.next_step.startswith("Ask its owner for a token")
    assert "--client-id" in refused.value.next_step
    assert len(posts) == 1  # the one registration try; no browser, no token request


async def _not_found_but_mcp(request: web.Request) -> web.StreamResponse:
    if request.method == "POST" and request.path == "/mcp":
        return web.Response(status=401, text="Unauthorized")
    return web.Response(status=404, text="Not Found")


def test_an_oauth_error_from_a_guessed_registration_endpoint_is_shown_as_such() -> None:
    """A 2025-03-26 server with a real /register that refuses our metadata is an OAuth
    server: its own error is the message, not the static token's."""
    guessed = AuthServerMetadata.guessed_for("https://legacy.example")
    step = register_client(guessed, ClientMetadata(redirect_uris=(REDIRECT,)), now=0.0)
    next(step)
    refusal = {"error": "invalid_client_metadata", "error_description": "no native apps"}
    with pytest.raises(RegistrationFailed, match="no native apps"):
        step.send(HttpResponse.of_json(refusal, status=400))
