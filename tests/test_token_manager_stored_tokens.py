"""TokenManager with the tokens a past login left in the vault: an AS that is down keeps the
old token while it is valid and says to retry later once it has expired, a token without a
refresh token serves until it expires, another resource's tokens are never used, and a
valid token's headers touch neither the vault nor the network."""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager

import aiohttp
import pytest

from mcp_bridge.auth.auth_records import CLIENTS, SERVERS, TOKENS, tokens_key
from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.discovery import AuthorizationContext, discover
from mcp_bridge.auth.errors import AuthServerUnavailable
from mcp_bridge.auth.http_step import run_step
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.store.base import CredentialVault, VaultTransaction
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.oauth_client import OAuthPeers, use_follower


async def discovered(mcp_url: str, http: aiohttp.ClientSession) -> AuthorizationContext:
    policy = UrlPolicy.for_server(mcp_url)
    return await run_step(discover(mcp_url, None, policy), http, policy=policy)


async def store_past_login(
    vault: CredentialVault,
    mcp_url: str,
    context: AuthorizationContext,
    tokens: TokenSet,
    *,
    received_at: float | None = None,
    with_client: bool = True,
) -> None:
    """The records a past login left, with `tokens` filed under this server's key whatever
    resource they name (as a damaged or tampered vault might hold them)."""
    record = tokens.to_json()
    if received_at is not None:
        record["received_at"] = received_at
    async with vault.transaction() as txn:
        txn.put(SERVERS, mcp_url, context.to_json())
        if with_client:
            client = ClientRegistration(context.issuer, "client-1", RegistrationMethod.DCR, "none")
            txn.put(CLIENTS, context.issuer, client.to_json())
        txn.put(TOKENS, tokens_key(context.issuer, context.resource), record)


async def test_an_unavailable_as_keeps_the_old_token_while_it_is_valid(
    auth_server: AuthServerFactory,
    oauth: OAuthPeers,
    bridge_http: aiohttp.ClientSession,
) -> None:
    server = auth_server(token_status=503)
    context = await discovered(server.mcp_url, bridge_http)
    vault = MemoryVault()
    now = time.time()
    # Inside the refresh margin (a fifth of 100 s) but still valid for 15 s.
    tokens = TokenSet(
        "old-access", context.issuer, context.resource, refresh_token="r", expires_at=now + 15
    )
    await store_past_login(vault, server.mcp_url, context, tokens, received_at=now - 85)
    manager = oauth.token_manager(server.mcp_url, vault, bridge_http)

    assert (await manager.fresh_tokens()).access_token == "old-access"
    assert (await manager.fresh_tokens()).access_token == "old-access"  # backoff: no retry yet
    assert server.stats()["token_requests"] == 1
    with pytest.raises(AuthServerUnavailable):
        await manager.refresh()  # an explicit refresh says why it failed
    assert await vault.get(TOKENS, tokens_key(context.issuer, context.resource)) is not None

    # Once the old token has expired, calls during the backoff fail fast, sending nothing.
    expired = TokenSet(
        "old-access", context.issuer, context.resource, refresh_token="r", expires_at=now - 1
    )
    await store_past_login(vault, server.mcp_url, context, expired, received_at=now - 101)
    later = oauth.token_manager(server.mcp_url, vault, bridge_http)
    with pytest.raises(AuthServerUnavailable):
        await later.fresh_tokens()
    requests = server.stats()["token_requests"]
    with pytest.raises(AuthServerUnavailable, match="next try"):
        await later.fresh_tokens()
    assert server.stats()["token_requests"] == requests


async def test_a_token_without_a_refresh_token_serves_until_it_expires(
    auth_server: AuthServerFactory,
    oauth: OAuthPeers,
    bridge_http: aiohttp.ClientSession,
) -> None:
    """Inside the refresh margin nothing can renew it: it is used, not dropped a margin
    early for a login (an ID token a refresh did not renew is such a token)."""
    server = auth_server()
    context = await discovered(server.mcp_url, bridge_http)
    vault = MemoryVault()
    now = time.time()
    tokens = TokenSet("last-access", context.issuer, context.resource, expires_at=now + 15)
    await store_past_login(vault, server.mcp_url, context, tokens, received_at=now - 85)
    manager = oauth.token_manager(server.mcp_url, vault, bridge_http)
    await manager.load()
    assert manager.usable_tokens() is None  # within the margin...
    assert (await manager.fresh_tokens()).access_token == "last-access"  # ...yet served
    assert server.stats()["token_requests"] == 0
    assert await vault.get(TOKENS, tokens_key(context.issuer, context.resource)) is not None


class CountingVault:
    """A CredentialVault that counts transactions (wraps a MemoryVault)."""

    def __init__(self) -> None:
        self.inner = MemoryVault()
        self.transactions = 0

    async def get(self, namespace: str, key: str) -> JsonObject | None:
        return await self.inner.get(namespace, key)

    def transaction(self) -> AbstractAsyncContextManager[VaultTransaction]:
        self.transactions += 1
        return self.inner.transaction()

    async def check(self) -> None:
        await self.inner.check()

    def describe(self) -> str:
        return "counting"


async def test_headers_with_a_valid_token_touch_neither_vault_nor_network(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
) -> None:
    server = auth_server()
    use_follower(monkeypatch)
    vault = CountingVault()
    credentials = oauth.credentials(server.mcp_url, vault, interactive=True)
    await credentials.login()
    first = await credentials.headers("POST", server.mcp_url)
    transactions, requests = vault.transactions, server.stats()["token_requests"]

    for _ in range(1000):
        # The same mapping, built once.
        assert await credentials.headers("POST", server.mcp_url) is first

    assert vault.transactions == transactions
    assert server.stats()["token_requests"] == requests
    tokens = credentials.manager.tokens
    assert tokens is not None
    assert dict(first) == {"Authorization": f"Bearer {tokens.access_token}"}


async def test_stored_tokens_for_another_resource_are_never_used(
    auth_server: AuthServerFactory,
    oauth: OAuthPeers,
    bridge_http: aiohttp.ClientSession,
) -> None:
    server = auth_server()
    context = await discovered(server.mcp_url, bridge_http)
    vault = MemoryVault()
    other = TokenSet("for-elsewhere", context.issuer, "https://other.example/mcp")
    # Filed under this server's key by mistake (or malice): MCP: never send it here.
    await store_past_login(vault, server.mcp_url, context, other, with_client=False)
    manager = oauth.token_manager(server.mcp_url, vault, bridge_http)
    await manager.load()
    assert manager.context is not None
    assert manager.tokens is None


async def test_headers_say_retry_later_when_the_as_is_down_and_the_token_expired(
    auth_server: AuthServerFactory,
    oauth: OAuthPeers,
    bridge_http: aiohttp.ClientSession,
) -> None:
    server = auth_server(token_status=503)
    context = await discovered(server.mcp_url, bridge_http)
    vault = MemoryVault()
    expired = TokenSet(
        "old-access",
        context.issuer,
        context.resource,
        refresh_token="r",
        expires_at=time.time() - 1,
    )
    await store_past_login(vault, server.mcp_url, context, expired)
    credentials = oauth.credentials(server.mcp_url, vault, interactive=True)

    with pytest.raises(AuthServerUnavailable) as refused:
        await credentials.headers("POST", server.mcp_url)
    assert "later" in refused.value.next_step or "shortly" in refused.value.next_step
    assert server.stats()["authorize_requests"] == 0  # an outage is not a reason to log in
