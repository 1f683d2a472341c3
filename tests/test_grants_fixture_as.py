"""The demo AS and identity provider enforce the rules of the grants without a browser, so
that the client's tests against them mean something: each rule is broken here on purpose,
with hand-made requests, and must be refused with a description naming it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from mcp_bridge.auth.client_assertion import CLIENT_ASSERTION_TYPE
from mcp_bridge.auth.grants import (
    ID_JAG_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    JWT_BEARER_GRANT,
    TOKEN_EXCHANGE_GRANT,
)
from mcp_bridge.auth.jws import SigningKey, sign_jwt
from mcp_bridge.demo.auth_modes import ServiceClient
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.grant_keys import ClientKey, make_client_key

SECRET = "s3cret"


@pytest.fixture
def key(tmp_path: Path) -> ClientKey:
    return make_client_key(tmp_path)


@pytest.fixture
def server(auth_server: AuthServerFactory, key: ClientKey) -> AuthServer:
    at_idp = ServiceClient("desktop", client_secret=SECRET)
    return auth_server(
        idp=True,
        service_clients=(key.service_client("svc"), ServiceClient("desktop", client_secret=SECRET)),
        idp_clients=(at_idp,),
    )


def basic(client_id: str, secret: str) -> dict[str, str]:
    return {"Authorization": aiohttp.encode_basic_auth(client_id, secret)}


def assertion(key: ClientKey, audience: str, **claims: object) -> str:
    signing = SigningKey.from_pem(key.path.read_bytes(), source=str(key.path))
    now = int(time.time())
    base = {"iss": "svc", "sub": "svc", "aud": audience, "jti": f"j{time.monotonic_ns()}"}
    return sign_jwt(signing, {**base, "iat": now, "exp": now + 60, **claims})


async def post(
    http: aiohttp.ClientSession, url: str, form: dict[str, str], **kw: Any
) -> tuple[int, dict[str, Any]]:
    async with http.post(url, data=form, **kw) as response:
        return response.status, await response.json()


def grant_form(client_assertion: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_assertion_type": CLIENT_ASSERTION_TYPE,
        "client_assertion": client_assertion,
    }


async def test_a_good_assertion_gets_a_token_once(
    server: AuthServer, key: ClientKey, http: aiohttp.ClientSession
) -> None:
    form = grant_form(assertion(key, server.issuer))
    status, body = await post(http, f"{server.issuer}/token", form)
    assert status == 200, body
    assert "refresh_token" not in body
    status, body = await post(http, f"{server.issuer}/token", form)  # the same jti again
    assert (status, body["error"]) == (401, "invalid_client")
    assert "jti was used before" in body["error_description"]


@pytest.mark.parametrize(
    ("claims", "words"),
    [
        ({"aud": "https://elsewhere.example"}, "aud must be"),
        ({"exp": int(time.time()) - 10}, "expired"),
        ({"iat": int(time.time()) + 600, "exp": int(time.time()) + 660}, "in the future"),
        ({"exp": int(time.time()) + 3600}, "longer than"),
        ({"iss": "someone-else"}, "iss and sub"),
    ],
    ids=["audience", "expired", "future", "lifetime", "issuer"],
)
async def test_a_bad_assertion_is_refused_naming_the_rule(
    server: AuthServer,
    key: ClientKey,
    http: aiohttp.ClientSession,
    claims: dict[str, object],
    words: str,
) -> None:
    form = grant_form(assertion(key, server.issuer, **claims))
    status, body = await post(http, f"{server.issuer}/token", form)
    assert (status, body["error"]) == (401, "invalid_client")
    assert words in body["error_description"]


async def test_an_assertion_signed_by_another_key_is_refused(
    server: AuthServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    other = make_client_key(tmp_path, "other")
    status, body = await post(
        http, f"{server.issuer}/token", grant_form(assertion(other, server.issuer))
    )
    assert (status, body["error"]) == (401, "invalid_client")
    assert "not valid" in body["error_description"]


async def test_a_wrong_secret_and_an_unknown_grant_are_refused(
    server: AuthServer, http: aiohttp.ClientSession
) -> None:
    form = {"grant_type": "client_credentials"}
    status, body = await post(http, f"{server.issuer}/token", form, headers=basic("desktop", "x"))
    assert (status, body["error"]) == (401, "invalid_client")
    status, body = await post(
        http,
        f"{server.issuer}/token",
        {**form, "resource": "https://other.example/mcp"},
        headers=basic("desktop", SECRET),
    )
    assert (status, body["error"]) == (400, "invalid_target")


# -- the identity provider and the ID-JAG ------------------------------------------------


async def exchange(
    server: AuthServer, http: aiohttp.ClientSession, id_token: str, **form: str
) -> tuple[int, dict[str, Any]]:
    assert server.idp_issuer is not None
    base = {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "requested_token_type": ID_JAG_TOKEN_TYPE,
        "audience": server.issuer,
        "resource": server.mcp_url,
        "subject_token": id_token,
        "subject_token_type": ID_TOKEN_TYPE,
    }
    return await post(
        http, f"{server.idp_issuer}/token", {**base, **form}, headers=basic("desktop", SECRET)
    )


async def redeem(
    server: AuthServer, http: aiohttp.ClientSession, jag: str
) -> tuple[int, dict[str, Any]]:
    form = {"grant_type": JWT_BEARER_GRANT, "assertion": jag, "resource": server.mcp_url}
    return await post(http, f"{server.issuer}/token", form, headers=basic("desktop", SECRET))


async def test_an_id_jag_is_issued_for_a_valid_id_token_and_redeemed_once(
    server: AuthServer, http: aiohttp.ClientSession
) -> None:
    status, body = await exchange(server, http, server.id_token("alice", "desktop"))
    assert status == 200, body
    assert (body["issued_token_type"], body["token_type"]) == (ID_JAG_TOKEN_TYPE, "N_A")
    status, token = await redeem(server, http, body["access_token"])
    assert status == 200, token
    status, again = await redeem(server, http, body["access_token"])
    assert (status, again["error"]) == (400, "invalid_grant")
    assert "used before" in again["error_description"]


@pytest.mark.parametrize(
    ("id_token_of", "form", "error", "words"),
    [
        (("alice", "someone-else"), {}, "invalid_grant", "not valid"),  # issued to another client
        (("alice", "desktop", -10), {}, "invalid_grant", "expired"),
        (
            ("alice", "desktop"),
            {"audience": "https://other-as.example"},
            "invalid_target",
            "no such",
        ),
        (
            ("alice", "desktop"),
            {"resource": "https://other.example/mcp"},
            "invalid_target",
            "no such",
        ),
        (("alice", "desktop"), {"requested_token_type": "urn:x"}, "invalid_request", "ID-JAG"),
    ],
    ids=["other-client", "expired", "audience", "resource", "token-type"],
)
async def test_the_idp_issues_only_for_a_valid_id_token_and_its_own_mapping(
    server: AuthServer,
    http: aiohttp.ClientSession,
    id_token_of: tuple[Any, ...],
    form: dict[str, str],
    error: str,
    words: str,
) -> None:
    status, body = await exchange(server, http, server.id_token(*id_token_of), **form)
    assert (status, body["error"]) == (400, error)
    assert words in body["error_description"]


async def test_the_as_refuses_an_id_jag_forged_or_for_another_client(
    server: AuthServer, key: ClientKey, http: aiohttp.ClientSession
) -> None:
    forged = assertion(key, server.issuer, resource=server.mcp_url, client_id="desktop")
    status, body = await redeem(server, http, forged)
    assert (status, body["error"]) == (400, "invalid_grant")
    status, body = await exchange(server, http, server.id_token("alice", "desktop"))
    assert status == 200
    jag = body["access_token"]
    status, body = await post(
        http,
        f"{server.issuer}/token",
        grant_form(assertion(key, server.issuer))
        | {"grant_type": JWT_BEARER_GRANT, "assertion": jag},
    )
    assert (status, body["error"]) == (400, "invalid_grant")
    assert "another client" in body["error_description"]
