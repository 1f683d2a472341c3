"""DPoP end to end (RFC 9449; MCP's DPoP extension): OAuthCredentials and the bridge's own
transport against the fixture AS + MCP server in their `dpop` modes, which check every
proof (demo/dpop_checks.py: signature against the jwk, typ, htm, htu, iat, jti replay, ath,
nonces) and bind tokens to the key (cnf.jkt). Counters from the AS's /stats say what
happened on the servers' side."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from mcp_bridge.auth.auth_records import DPOP_KEYS
from mcp_bridge.auth.errors import AuthError
from mcp_bridge.auth.provider import OAuthCredentials
from mcp_bridge.auth.settings import Grant
from mcp_bridge.demo.auth_modes import ServiceClient
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.oauth_client import (
    BridgeClient,
    OAuthPeers,
    settings_for,
    text_of,
    use_follower,
)


@dataclass
class SignedIn:
    """A fixture server in the modes asked for, and a bridge client past its login."""

    server: AuthServer
    credentials: OAuthCredentials
    client: BridgeClient
    vault: MemoryVault = field(repr=False)


SignIn = Callable[..., Awaitable[SignedIn]]


@pytest.fixture
def sign_in(
    auth_server: AuthServerFactory, monkeypatch: pytest.MonkeyPatch, oauth: OAuthPeers
) -> SignIn:
    """`await sign_in(**modes)`, with provider options under `options=`."""
    use_follower(monkeypatch)

    async def make(options: dict[str, Any] | None = None, **modes: Any) -> SignedIn:
        server = auth_server(**modes)
        vault = MemoryVault()
        credentials = oauth.credentials(server.mcp_url, vault, interactive=True, **(options or {}))
        return SignedIn(server, credentials, await oauth.started_client(credentials), vault)

    return make


async def bound_again_after_expiry(credentials: OAuthCredentials, client: BridgeClient) -> None:
    """Wait out a 2-second token, call: the call is answered, with new tokens, bound too."""
    first = credentials.manager.tokens
    await asyncio.sleep(2.5)
    assert text_of(await client.call("echo", "after expiry")) == "after expiry"
    tokens = credentials.manager.tokens
    assert first is not None
    assert tokens is not None
    assert first.is_dpop
    assert tokens.is_dpop
    assert tokens.access_token != first.access_token


async def test_a_dpop_server_gets_bound_tokens_and_a_proof_with_every_request(
    sign_in: SignIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    signed = await sign_in(dpop=True)
    server, credentials, client = signed.server, signed.credentials, signed.client
    for text in ("one", "two", "three"):
        assert text_of(await client.call("echo", text)) == text

    tokens = credentials.manager.tokens
    assert tokens is not None
    assert tokens.is_dpop
    stats = server.stats()
    assert stats["dpop_bound_grants"] == 1
    # The code was bound to the key the login named (dpop_jkt), and the AS, which refuses a
    # proof of any other key (test_dpop_fixture.py), redeemed it: the same key.
    assert stats["dpop_bound_codes"] == 1
    # initialize, initialized, three calls: each with its own proof (a replay is refused).
    assert stats["dpop_resource_requests"] >= 5
    assert stats["dpop_refusals"] == 0
    key = await signed.vault.get(DPOP_KEYS, credentials.manager.server_key)
    assert key is not None
    assert "d" in key  # the private key, in the vault (encrypted, as the tokens)
    assert key["d"] not in caplog.text  # ...and never in a log
    assert tokens.access_token not in caplog.text


async def test_both_servers_nonces_are_answered_and_the_latest_is_used(
    sign_in: SignIn,
) -> None:
    signed = await sign_in(dpop=True, dpop_nonce=True, dpop_nonce_rotate_every=2)
    server, client = signed.server, signed.client
    for index in range(6):
        assert text_of(await client.call("echo", f"n{index}")) == f"n{index}"

    stats = server.stats()
    assert stats["dpop_as_nonce_challenges"] == 1  # the code exchange, retried once
    # One use_dpop_nonce from the resource: each rotated nonce came on the answer that
    # accepted a request, and the next proof named it without being asked again.
    assert stats["dpop_rs_nonce_challenges"] == 1
    assert stats["dpop_resource_requests"] >= 8
    assert stats["dpop_refusals"] == 0


async def test_a_code_made_by_the_consent_page_is_bound_to_the_login_key(
    sign_in: SignIn,
) -> None:
    signed = await sign_in(dpop=True, consent="page")
    assert text_of(await signed.client.call("echo", "consented")) == "consented"
    stats = signed.server.stats()
    assert (stats["consent_pages"], stats["dpop_bound_codes"]) == (1, 1)
    assert stats["dpop_refusals"] == 0


async def test_refresh_sends_a_proof_of_the_same_key_and_stays_bound(sign_in: SignIn) -> None:
    options = {"background_refresh": False}
    signed = await sign_in(options, dpop=True, dpop_nonce=True, access_ttl_s=2)
    server, credentials, client = signed.server, signed.credentials, signed.client
    await bound_again_after_expiry(credentials, client)
    stats = server.stats()
    assert (stats["refreshes"], stats["authorizations"]) == (1, 1)
    assert stats["dpop_bound_grants"] == 2
    assert stats["dpop_refusals"] == 0


async def test_a_restart_reloads_the_key_and_the_bound_token_still_works(
    sign_in: SignIn, oauth: OAuthPeers
) -> None:
    before = await sign_in(dpop=True, dpop_nonce=True)
    server = before.server
    proofs = before.credentials.manager.dpop.proofs
    assert proofs is not None
    await before.client.aclose()
    await before.credentials.aclose()

    after = oauth.credentials(server.mcp_url, before.vault, interactive=False)
    client = await oauth.started_client(after)
    assert text_of(await client.call("echo", "again")) == "again"
    reloaded = after.manager.dpop.proofs
    assert reloaded is not None
    assert reloaded.key.thumbprint == proofs.key.thumbprint
    stats = server.stats()
    assert (stats["authorizations"], stats["refreshes"]) == (1, 0)
    assert stats["dpop_refusals"] == 0


async def test_a_resource_asking_for_dpop_is_enough_without_the_as_saying_so(
    sign_in: SignIn,
) -> None:
    signed = await sign_in(dpop=True, dpop_advertise=False)
    server, credentials, client = signed.server, signed.credentials, signed.client
    assert text_of(await client.call("echo", "bound")) == "bound"
    tokens = credentials.manager.tokens
    assert tokens is not None
    assert tokens.is_dpop
    assert server.stats()["dpop_bound_grants"] == 1


async def test_without_dpop_the_tokens_stay_bearer(sign_in: SignIn) -> None:
    signed = await sign_in()
    credentials, vault = signed.credentials, signed.vault
    tokens = credentials.manager.tokens
    assert tokens is not None
    assert not tokens.is_dpop
    assert await vault.get(DPOP_KEYS, credentials.manager.server_key) is None


async def test_an_as_that_never_accepts_its_own_nonce_is_refused_in_words(
    auth_server: AuthServerFactory, monkeypatch: pytest.MonkeyPatch, oauth: OAuthPeers
) -> None:
    server = auth_server(dpop=True, dpop_nonce_never_accepted=True)
    use_follower(monkeypatch)
    credentials = oauth.credentials(server.mcp_url, MemoryVault(), interactive=True)
    with pytest.raises(AuthError, match="keeps asking for a DPoP nonce") as refused:
        await credentials.login()
    assert refused.value.next_step
    assert server.stats()["dpop_as_nonce_challenges"] == 2  # the request and one retry


async def test_the_client_credentials_grant_binds_its_tokens_and_renews_them_bound(
    auth_server: AuthServerFactory, oauth: OAuthPeers
) -> None:
    secret = "s3cret-of-the-service"
    service = ServiceClient("svc", client_secret=secret)
    server = auth_server(dpop=True, dpop_nonce=True, service_clients=(service,), access_ttl_s=2)
    settings = settings_for(grant=Grant.CLIENT_CREDENTIALS, client_id="svc", client_secret=secret)
    credentials = oauth.credentials(
        server.mcp_url, MemoryVault(), interactive=False, settings=settings
    )
    client = await oauth.started_client(credentials)
    await bound_again_after_expiry(credentials, client)
    stats = server.stats()
    assert stats["client_credentials_grants"] >= 2  # made again at expiry, with a proof
    assert stats["dpop_bound_grants"] == stats["client_credentials_grants"]
    assert stats["dpop_refusals"] == 0
