"""The fixture servers' DPoP checks (demo/dpop_edge.py, dpop_checks.py) against a hostile
client: proofs built by hand with auth/dpop.py, each wrong in one way, for a token the
bridge's own login bound to its key. Each is refused with the RFC's error and a message
that says what was wrong; the right proof is accepted, so the refusals are the checks'.
The code binding (`dpop_jkt`, RFC 9449 §10) is driven by the tiny client of
tests/fixtures/auth_server_client.py, which shares no code with the bridge's login."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest

from mcp_bridge.auth.dpop import DpopKey, build_proof
from mcp_bridge.auth.provider import OAuthCredentials
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.auth_server_client import TinyClient
from tests.fixtures.mcp_servers import initialize_request
from tests.fixtures.oauth_client import OAuthPeers, use_follower

PING = initialize_request(1)  # any request: the checks come before the MCP server
HEADERS = {"Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-11-25"}


@pytest.fixture
async def logged_in(
    auth_server: AuthServerFactory, monkeypatch: pytest.MonkeyPatch, oauth: OAuthPeers
) -> tuple[AuthServer, OAuthCredentials]:
    server = auth_server(dpop=True, dpop_nonce=True)
    use_follower(monkeypatch)
    credentials = oauth.credentials(
        server.mcp_url, MemoryVault(), interactive=True, background_refresh=False
    )
    await credentials.login()
    return server, credentials


def parts(credentials: OAuthCredentials) -> tuple[str, str, DpopKey]:
    """The bound access token, its refresh token and the key they are bound to."""
    tokens, proofs = credentials.manager.tokens, credentials.manager.dpop.proofs
    assert tokens is not None
    assert tokens.is_dpop
    assert tokens.refresh_token
    assert proofs
    return tokens.access_token, tokens.refresh_token, proofs.key


async def to_resource(
    http: aiohttp.ClientSession, url: str, authorization: str, *proofs: str
) -> tuple[int, str, dict[str, Any]]:
    headers = {**HEADERS, "Authorization": authorization}
    sent = [("DPoP", proof) for proof in proofs]
    async with http.post(url, json=PING, headers=[*headers.items(), *sent]) as response:
        challenge = response.headers.get("WWW-Authenticate", "")
        body = await response.json(content_type=None) if response.status == 401 else {}
        return response.status, challenge, body


async def resource_nonce(http: aiohttp.ClientSession, url: str, token: str, key: DpopKey) -> str:
    """The nonce the resource wants: a proof without one is answered with it (§9)."""
    proof = build_proof(key, "POST", url, time.time(), "probe", access_token=token)
    headers = {**HEADERS, "Authorization": f"DPoP {token}", "DPoP": proof}
    async with http.post(url, json=PING, headers=headers) as response:
        assert response.status == 401
        assert 'error="use_dpop_nonce"' in response.headers["WWW-Authenticate"]
        nonce = response.headers.get("DPoP-Nonce")
    assert nonce is not None
    return nonce


async def test_the_resource_refuses_each_bad_proof_and_says_why(
    logged_in: tuple[AuthServer, OAuthCredentials], http: aiohttp.ClientSession
) -> None:
    server, credentials = logged_in
    url = server.mcp_url
    token, _, key = parts(credentials)
    nonce = await resource_nonce(http, url, token, key)
    now = time.time()

    def proof(**changes: Any) -> str:
        made: dict[str, Any] = {
            "key": key,
            "htm": "POST",
            "htu": url,
            "now": now,
            "jti": f"j-{time.monotonic_ns()}",
            "nonce": nonce,
            "access_token": token,
        }
        made.update(changes)
        return build_proof(**made)

    good = proof()
    assert (await to_resource(http, url, f"DPoP {token}", good))[0] == 200
    signed = proof()
    tampered = signed[:-6] + ("AAAAAA" if not signed.endswith("AAAAAA") else "BBBBBB")
    hostile: list[tuple[str, tuple[str, ...], str, str]] = [
        ("replayed proof", (good,), "invalid_dpop_proof", "jti replay"),
        ("wrong nonce", (proof(nonce="not-the-nonce"),), "use_dpop_nonce", "not current"),
        ("no nonce", (proof(nonce=None),), "use_dpop_nonce", "has no nonce"),
        ("wrong method", (proof(htm="GET"),), "invalid_dpop_proof", "htm"),
        ("wrong URL", (proof(htu=url + "/other"),), "invalid_dpop_proof", "htu"),
        ("old iat", (proof(now=now - 3600),), "invalid_dpop_proof", "iat"),
        ("iat ahead", (proof(now=now + 3600),), "invalid_dpop_proof", "iat"),
        ("another token", (proof(access_token="x"),), "invalid_dpop_proof", "ath"),
        ("bad signature", (tampered,), "invalid_dpop_proof", "signature"),
        ("two proofs", (proof(), proof()), "invalid_dpop_proof", "exactly one"),
        ("no proof", (), "invalid_dpop_proof", "exactly one"),
        ("another key", (proof(key=DpopKey.generate()),), "invalid_token", "not bound"),
    ]
    for what, proofs, error, words in hostile:
        status, challenge, body = await to_resource(http, url, f"DPoP {token}", *proofs)
        assert status == 401, what
        assert challenge.startswith(f'DPoP error="{error}"'), (what, challenge)
        assert words in body["error_description"], (what, body)

    # The bound token sent as a bearer token: refused, whatever else comes with it.
    status, challenge, body = await to_resource(http, url, f"Bearer {token}")
    assert status == 401
    assert 'DPoP error="invalid_token"' in challenge
    assert "bound to a DPoP key" in body["error_description"]
    stats = server.stats()
    assert stats["dpop_refusals"] == len(hostile) - 2 + 1  # nonce refusals are counted apart
    assert stats["last"]["dpop_refusal"].startswith("this token is bound")


async def test_an_unauthenticated_request_is_offered_bearer_and_dpop(
    logged_in: tuple[AuthServer, OAuthCredentials], http: aiohttp.ClientSession
) -> None:
    server, _ = logged_in
    async with http.post(server.mcp_url, json=PING, headers=HEADERS) as response:
        assert response.status == 401
        challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert challenge.endswith('DPoP algs="ES256"')


async def test_the_token_endpoint_refuses_a_refresh_without_the_key(
    logged_in: tuple[AuthServer, OAuthCredentials], http: aiohttp.ClientSession
) -> None:
    server, credentials = logged_in
    _, refresh_token, key = parts(credentials)
    client = credentials.manager.client
    assert client is not None
    endpoint = f"{server.issuer}/token"
    form = {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "client_id": client.client_id,
    }

    async def token_request(*proofs: str) -> tuple[int, dict[str, Any], str | None]:
        headers = [("DPoP", proof) for proof in proofs]
        async with http.post(endpoint, data=form, headers=headers) as response:
            return response.status, await response.json(), response.headers.get("DPoP-Nonce")

    status, body, _ = await token_request()
    assert (status, body["error"]) == (400, "invalid_dpop_proof")
    assert "bound to a DPoP key" in body["error_description"]

    status, body, nonce = await token_request(build_proof(key, "POST", endpoint, time.time(), "a"))
    assert (status, body["error"]) == (400, "use_dpop_nonce")
    assert nonce

    other = build_proof(DpopKey.generate(), "POST", endpoint, time.time(), "b", nonce=nonce)
    status, body, _ = await token_request(other)
    assert (status, body["error"]) == (400, "invalid_grant")
    assert "another DPoP key" in body["error_description"]

    right = build_proof(key, "POST", endpoint, time.time(), "c", nonce=nonce)
    status, body, _ = await token_request(right)
    assert status == 200
    assert body["token_type"] == "DPoP"
    status, body, _ = await token_request(right)
    assert (status, body["error"]) == (400, "invalid_dpop_proof")
    assert "jti replay" in body["error_description"]


@pytest.mark.parametrize("consent", ["auto", "page"])
async def test_a_code_bound_by_dpop_jkt_is_redeemed_only_with_a_proof_of_that_key(
    auth_server: AuthServerFactory, http: aiohttp.ClientSession, consent: str
) -> None:
    """RFC 9449 §10: the authorization request named key A; the token endpoint refuses the
    code with a proof of key B, and with no proof, as invalid_grant. Neither refusal spends
    the code: a proof of key A then redeems it. `page`: the code is made by the consent
    form's "Allow", a request after the one that named the key."""
    server = auth_server(dpop=True, consent=consent)
    key, other = DpopKey.generate(), DpopKey.generate()
    client = TinyClient(http, server)
    await client.register()
    if consent == "auto":
        code = (await client.authorize(dpop_jkt=key.thumbprint))["code"]
    else:
        code = await allowed_code(http, client.authorization_url("st", dpop_jkt=key.thumbprint))
    endpoint = f"{server.issuer}/token"

    async def redeem(signer: DpopKey | None) -> tuple[int, dict[str, Any]]:
        jti = f"j-{time.monotonic_ns()}"
        proof = None if signer is None else build_proof(signer, "POST", endpoint, time.time(), jti)
        return await client.token(
            dpop_proof=proof,
            grant_type="authorization_code",
            code=code,
            redirect_uri=client.redirect_uri,
            code_verifier=client.verifier,
        )

    for signer, words in ((other, "another DPoP key"), (None, "send a DPoP proof")):
        status, body = await redeem(signer)
        assert (status, body["error"]) == (400, "invalid_grant"), body
        assert "dpop_jkt" in body["error_description"]
        assert words in body["error_description"]
    status, body = await redeem(key)
    assert status == 200, body
    assert body["token_type"] == "DPoP"
    stats = server.stats()
    assert (stats["dpop_bound_codes"], stats["dpop_bound_grants"]) == (1, 1)
    assert stats["dpop_refusals"] == 2


async def allowed_code(http: aiohttp.ClientSession, authorization_url: str) -> str:
    """The code from the consent page's "Allow", posted as the page's form would be."""
    async with http.get(authorization_url, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        consent_url = response.headers["Location"]
    consent_id = parse_qs(urlsplit(consent_url).query)["id"][0]
    form = {"id": consent_id, "action": "allow"}
    async with http.post(consent_url.split("?")[0], data=form, allow_redirects=False) as response:
        assert response.status == 303, await response.text()
        return parse_qs(urlsplit(response.headers["Location"]).query)["code"][0]
