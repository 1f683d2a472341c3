"""The grants without a browser through OAuthCredentials, against the demo AS that enforces
them (mcp_bridge/demo/machine_grants.py) and its identity provider (enterprise_idp.py):
the first 401 makes the grant, no browser ever opens, an expiring token is replaced by
making the grant again, and each refusal reaches the caller saying what to fix."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from mcp_bridge.auth import login_coordinator
from mcp_bridge.auth.errors import AuthError, ClientRejected, LoginRequired
from mcp_bridge.auth.login_brake import MAX_LOGINS_PER_WINDOW
from mcp_bridge.auth.provider import OAuthCredentials
from mcp_bridge.auth.settings import Grant
from mcp_bridge.demo.auth_modes import ServiceClient
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.grant_keys import make_client_key
from tests.fixtures.oauth_client import OAuthPeers, settings_for, text_of

SECRET = "s3cret-of-the-service"
NO_BROWSER = "/bin/false"  # a $BROWSER that fails: nothing here may open one


@pytest.fixture(autouse=True)
def no_browser(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BROWSER", NO_BROWSER)


def service_credentials(oauth: OAuthPeers, server: AuthServer, **auth: str) -> OAuthCredentials:
    """Credentials for `server` as client "svc" with --grant client-credentials, never
    interactive: a service has nobody to ask."""
    settings = settings_for(grant=Grant.CLIENT_CREDENTIALS, client_id="svc", **auth)
    return oauth.credentials(server.mcp_url, MemoryVault(), interactive=False, settings=settings)


async def test_client_credentials_with_a_secret_get_a_token_on_the_first_401(
    auth_server: AuthServerFactory, oauth: OAuthPeers
) -> None:
    server = auth_server(service_clients=(ServiceClient("svc", client_secret=SECRET),))
    credentials = service_credentials(oauth, server, client_secret=SECRET)
    client = await oauth.started_client(credentials)
    assert text_of(await client.call("echo", "as a service")) == "as a service"
    stats = server.stats()
    assert stats["client_credentials_grants"] == 1
    assert (stats["registrations"], stats["authorizations"]) == (0, 0)
    assert stats["last"]["token_request"]["client_auth"] == "basic"
    assert stats["last"]["token_request"]["resource"] == server.mcp_url
    tokens = credentials.manager.tokens
    assert tokens is not None
    assert tokens.refresh_token is None


async def test_client_credentials_with_a_key_sign_a_fresh_assertion_each_time(
    auth_server: AuthServerFactory, oauth: OAuthPeers, tmp_path: Path
) -> None:
    key = make_client_key(tmp_path)
    # JSON only: the form is refused first, and the retry needs an assertion of its own
    # (the AS has seen the first one's jti).
    server = auth_server(service_clients=(key.service_client("svc"),), token_json_only=True)
    credentials = service_credentials(oauth, server, client_key_file=str(key.path))
    client = await oauth.started_client(credentials)
    assert text_of(await client.call("echo", "signed")) == "signed"
    stats = server.stats()
    assert stats["client_credentials_grants"] == 1
    assert stats["last"]["token_request"]["client_auth"] == "private_key_jwt"
    assert stats["token_json_requests"] >= 1


async def test_an_expiring_token_is_replaced_by_making_the_grant_again(
    auth_server: AuthServerFactory, oauth: OAuthPeers, tmp_path: Path
) -> None:
    key = make_client_key(tmp_path, rsa_key=True)
    server = auth_server(service_clients=(key.service_client("svc"),), access_ttl_s=3)
    credentials = service_credentials(oauth, server, client_key_file=str(key.path))
    client = await oauth.started_client(credentials)
    first = credentials.manager.tokens
    assert first is not None
    await asyncio.sleep(3.5)  # past expiry: the background renewal or this call renews
    assert text_of(await client.call("echo", "later")) == "later"
    renewed = credentials.manager.tokens
    assert renewed is not None
    assert renewed.access_token != first.access_token
    assert server.stats()["client_credentials_grants"] >= 2


@pytest.mark.parametrize(
    ("modes", "expected", "fix"),
    [
        ({"assertion_audience": "token_endpoint"}, "aud must be", "key file"),
        ({"clock_skew_s": 600.0}, "expired", "clock"),
    ],
    ids=["audience", "clock"],
)
async def test_an_assertion_the_server_refuses_is_reported_with_what_to_fix(
    auth_server: AuthServerFactory,
    oauth: OAuthPeers,
    tmp_path: Path,
    modes: dict[str, object],
    expected: str,
    fix: str,
) -> None:
    key = make_client_key(tmp_path)
    server = auth_server(service_clients=(key.service_client("svc"),), **modes)
    credentials = service_credentials(oauth, server, client_key_file=str(key.path))
    with pytest.raises(ClientRejected) as refused:
        await credentials.on_unauthorized(None)
    assert expected in refused.value.what
    assert fix in refused.value.next_step
    assert server.stats()["machine_grant_refusals"] == 1


async def test_a_wrong_secret_names_the_flag(
    auth_server: AuthServerFactory, oauth: OAuthPeers
) -> None:
    server = auth_server(service_clients=(ServiceClient("svc", client_secret=SECRET),))
    credentials = service_credentials(oauth, server, client_secret="nope")
    with pytest.raises(ClientRejected) as refused:
        await credentials.on_unauthorized(None)
    assert "wrong client secret" in refused.value.what
    assert "--client-id" in refused.value.next_step


async def test_a_grant_that_keeps_failing_is_braked_in_the_words_of_a_grant(
    auth_server: AuthServerFactory, oauth: OAuthPeers
) -> None:
    """The storm brake stops a grant that keeps being refused, as it stops browser
    logins; its message speaks of the grant and the command that makes it, not of a
    browser that never opened."""
    server = auth_server(service_clients=(ServiceClient("svc", client_secret=SECRET),))
    credentials = service_credentials(oauth, server, client_secret="nope")
    for _ in range(MAX_LOGINS_PER_WINDOW):
        with pytest.raises(ClientRejected):
            await credentials.on_unauthorized(None)
    with pytest.raises(AuthError) as braked:
        await credentials.on_unauthorized(None)
    said = f"{braked.value.what}. {braked.value.next_step}"
    assert "client-credentials grants" in said
    assert f"mcp-bridge login {server.mcp_url} --grant client-credentials" in said
    assert "browser" not in said
    assert server.stats()["machine_grant_refusals"] == MAX_LOGINS_PER_WINDOW


async def test_a_request_that_outwaits_a_slow_grant_hears_of_the_grant(
    auth_server: AuthServerFactory, oauth: OAuthPeers, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A grant never shows a URL: the request must not wait for one (it used to, this long).
    monkeypatch.setattr(login_coordinator, "SIGN_IN_URL_WAIT_S", 600.0)
    server = auth_server(
        service_clients=(ServiceClient("svc", client_secret=SECRET),), token_delay_s=2.0
    )
    settings = settings_for(
        grant=Grant.CLIENT_CREDENTIALS, client_id="svc", client_secret=SECRET, login_wait_s=0.2
    )
    credentials = oauth.credentials(
        server.mcp_url, MemoryVault(), interactive=False, settings=settings
    )
    with pytest.raises(LoginRequired) as waiting:
        async with asyncio.timeout(60):
            await credentials.on_unauthorized(None)
    said = f"{waiting.value.what}. {waiting.value.next_step}"
    assert "client-credentials grant" in said
    assert "browser" not in said
    assert "sign in" not in said


# -- enterprise-managed authorization ------------------------------------------------


def enterprise_server(auth_server: AuthServerFactory, **modes: object) -> AuthServer:
    """The demo AS with its IdP; client "desktop" is registered at both, by secret."""
    client = ServiceClient("desktop", client_secret=SECRET)
    return auth_server(idp=True, service_clients=(client,), idp_clients=(client,), **modes)


def enterprise_credentials(
    oauth: OAuthPeers, server: AuthServer, directory: Path, id_token: str
) -> OAuthCredentials:
    """Credentials for `server` with --grant enterprise, `id_token` in its file."""
    id_token_file = directory / "id-token"
    id_token_file.write_text(id_token + "\n")
    settings = settings_for(
        grant=Grant.ENTERPRISE,
        client_id="desktop",
        client_secret=SECRET,
        idp_issuer=server.idp_issuer,
        idp_client_id="desktop",
        idp_client_secret=SECRET,
        id_token_file=str(id_token_file),
    )
    return oauth.credentials(server.mcp_url, MemoryVault(), interactive=False, settings=settings)


async def test_an_id_token_is_exchanged_for_an_id_jag_and_redeemed(
    auth_server: AuthServerFactory, oauth: OAuthPeers, tmp_path: Path
) -> None:
    server = enterprise_server(auth_server, access_ttl_s=3)
    credentials = enterprise_credentials(
        oauth, server, tmp_path, server.id_token("alice", "desktop")
    )
    client = await oauth.started_client(credentials)
    assert text_of(await client.call("echo", "as alice")) == "as alice"
    await asyncio.sleep(3.5)  # the token expires: the exchange is made again
    assert text_of(await client.call("echo", "still alice")) == "still alice"
    assert server.idp_stats()["id_jags_issued"] >= 2
    assert server.stats()["jwt_bearer_grants"] >= 2


@pytest.mark.parametrize(
    ("modes", "error", "expected"),
    [
        ({"idp_policy": "deny"}, AuthError, "refused an ID-JAG"),
        ({"idp_policy": "wrong_audience"}, AuthError, "another-as.example"),
    ],
    ids=["idp-refuses", "wrong-audience"],
)
async def test_an_identity_provider_that_says_no_is_reported(
    auth_server: AuthServerFactory,
    oauth: OAuthPeers,
    tmp_path: Path,
    modes: dict[str, object],
    error: type[AuthError],
    expected: str,
) -> None:
    server = enterprise_server(auth_server, **modes)
    credentials = enterprise_credentials(
        oauth, server, tmp_path, server.id_token("alice", "desktop")
    )
    with pytest.raises(error) as refused:
        await credentials.on_unauthorized(None)
    assert expected in refused.value.what
    assert "administrator" in refused.value.next_step
    assert server.stats()["jwt_bearer_grants"] == 0


async def test_an_expired_id_token_asks_for_a_new_sign_in_before_any_request(
    auth_server: AuthServerFactory, oauth: OAuthPeers, tmp_path: Path
) -> None:
    server = enterprise_server(auth_server)
    expired = server.id_token("alice", "desktop", ttl_s=-60)
    credentials = enterprise_credentials(oauth, server, tmp_path, expired)
    with pytest.raises(LoginRequired) as refused:
        await credentials.on_unauthorized(None)
    assert "expired" in refused.value.what
    assert str(tmp_path / "id-token") in refused.value.next_step
    assert server.idp_stats().get("exchange_requests", 0) == 0
