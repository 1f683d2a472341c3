"""The ID token as the bearer (`--use-id-token`): its `exp` read from the JWT, the TokenSet
that sends it, and refreshes that keep it (OpenID Connect Core §2, §12)."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.errors import AuthResponseInvalid
from mcp_bridge.auth.http_step import HttpResponse
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.token_endpoint import refresh_tokens
from mcp_bridge.auth.token_set import (
    MAX_TOKEN_LIFETIME_S,
    TokenSet,
    id_token_expires_at,
    parse_token_response,
)
from tests.fixtures.http_steps import finish

ISSUER = "https://cognito-idp.example.com/pool"
MCP = "https://api.example.com/mcp"
NOW = 1_700_000_000.0
AS = AuthServerMetadata(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/authorize",
    token_endpoint=f"{ISSUER}/token",
)
CLIENT = ClientRegistration(ISSUER, "app-client", RegistrationMethod.DCR, "none")


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def jwt(claims: object, *, parts: int = 3) -> str:
    """An unsigned-looking JWT: the signature is never checked here."""
    header = b64url(json.dumps({"alg": "RS256"}).encode())
    payload = b64url(json.dumps(claims).encode())
    return ".".join([header, payload, "sig", *["x"] * (parts - 3)])


def expires(token: str) -> float | None:
    return id_token_expires_at(token, now=NOW, issuer=ISSUER)


def test_exp_is_read_from_the_payload() -> None:
    assert expires(jwt({"sub": "u", "exp": NOW + 300})) == NOW + 300
    assert expires(jwt({"exp": str(int(NOW) + 60)})) == NOW + 60  # digits as text too


@pytest.mark.parametrize(
    "token",
    [
        jwt({"sub": "no exp"}),
        jwt({"exp": "soon"}),
        jwt({"exp": True}),
        jwt(["not", "an", "object"]),
        jwt({"exp": NOW + 60}, parts=5),  # an encrypted ID token: nothing to read
        "opaque-token",
        "a.!!!not-base64!!!.c",
        "a." + b64url(b"\xff\xfe") + ".c",  # not UTF-8
        "a." + b64url(b"[" * 100_000) + ".c",  # nested deeper than json can read
    ],
)
def test_an_unreadable_exp_is_none(token: str) -> None:
    assert expires(token) is None


def test_an_exp_already_past_is_refused_naming_the_clock() -> None:
    with pytest.raises(AuthResponseInvalid, match="clock"):
        expires(jwt({"exp": NOW - 1}))


def test_a_far_exp_is_cut_to_the_longest_lifetime() -> None:
    assert expires(jwt({"exp": 10**400})) == NOW + MAX_TOKEN_LIFETIME_S
    assert expires(jwt({"exp": 1e300})) == NOW + MAX_TOKEN_LIFETIME_S


@given(st.text(max_size=300) | st.binary(max_size=300).map(b64url))
def test_any_token_gives_a_time_none_or_the_named_refusal(payload: str) -> None:
    try:
        found = expires(f"h.{payload}.s")
    except AuthResponseInvalid:
        return
    assert found is None or NOW < found <= NOW + MAX_TOKEN_LIFETIME_S


def token_reply(**fields: object) -> HttpResponse:
    return HttpResponse.of_json({"access_token": "access", "token_type": "Bearer", **fields})


def parsed(reply: HttpResponse) -> TokenSet:
    return parse_token_response(
        reply, issuer=ISSUER, resource=MCP, requested_scopes=("openid",), now=NOW
    )


def test_the_id_token_becomes_the_bearer_and_its_exp_the_expiry() -> None:
    id_token = jwt({"exp": NOW + 120})
    tokens = parsed(token_reply(id_token=id_token, expires_in=3600)).sending_id_token(NOW)
    assert tokens.authorization_header() == f"Bearer {id_token}"
    assert tokens.expires_at == NOW + 120
    assert id_token not in repr(tokens)
    # Without `exp` to read, the access token's lifetime is the best guess left.
    opaque = parsed(token_reply(id_token="opaque", expires_in=3600)).sending_id_token(NOW)
    assert opaque.expires_at == NOW + 3600


def test_without_the_flag_the_id_token_is_held_but_not_sent_nor_stored() -> None:
    tokens = parsed(token_reply(id_token=jwt({"exp": NOW + 120})))
    assert tokens.id_token is not None  # a fresh login's diagnosis asks whether there was one
    assert tokens.authorization_header() == "Bearer access"
    assert "id_token" not in tokens.to_json()


def test_a_response_without_an_id_token_cannot_send_one() -> None:
    with pytest.raises(AuthResponseInvalid, match="no id_token") as refused:
        parsed(token_reply(id_token=["not text"])).sending_id_token(NOW)
    assert "openid" in refused.value.next_step


def test_the_vault_record_keeps_the_choice() -> None:
    tokens = parsed(token_reply(id_token=jwt({"exp": NOW + 120}))).sending_id_token(NOW)
    assert TokenSet.from_json(tokens.to_json()) == tokens
    damaged = {**tokens.to_json(), "id_token": None}
    with pytest.raises(AuthResponseInvalid, match="damaged"):
        TokenSet.from_json(damaged)


OLD = TokenSet(
    "old-access",
    ISSUER,
    MCP,
    refresh_token="old-refresh",
    expires_at=NOW + 30,
    scopes=("mcp",),
    id_token=jwt({"exp": NOW + 30}),
    sends_id_token=True,
)


def test_a_refresh_asks_for_openid_and_sends_the_new_id_token() -> None:
    step = refresh_tokens(AS, CLIENT, OLD, now=NOW)
    request = next(step)
    assert request.form()["scope"] == "mcp openid"
    new_id = jwt({"exp": NOW + 600})
    fresh = finish(step, token_reply(id_token=new_id, refresh_token="new-refresh"))
    assert fresh.sends_id_token
    assert fresh.bearer_token == new_id
    assert fresh.expires_at == NOW + 600
    assert fresh.refresh_token == "new-refresh"


def test_a_refresh_without_an_id_token_keeps_the_old_one_until_its_exp_and_no_more() -> None:
    step = refresh_tokens(AS, CLIENT, OLD, now=NOW)
    next(step)
    fresh = finish(step, token_reply(refresh_token="new-refresh", expires_in=3600))
    assert fresh.bearer_token == OLD.id_token
    assert fresh.expires_at == OLD.expires_at  # not the new access token's hour
    # The refresh token renews only what is never sent: it is not spent again.
    assert fresh.refresh_token is None
    assert TokenSet.from_json(fresh.to_json()) == fresh


def test_tokens_without_the_flag_refresh_as_before() -> None:
    plain = replace(OLD, sends_id_token=False, id_token=None)
    step = refresh_tokens(AS, CLIENT, plain, now=NOW)
    assert next(step).form()["scope"] == "mcp"
    fresh = finish(step, token_reply(id_token=jwt({"exp": NOW + 9}), expires_in=60))
    assert not fresh.sends_id_token
    assert fresh.expires_at == NOW + 60
