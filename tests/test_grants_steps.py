"""auth/grants.py without sockets: the form each grant sends, how the client authenticates
(a secret, or a new assertion per request), what a token exchange answer must hold, and
which error each refusal becomes, with the fix it names."""

from __future__ import annotations

import base64
import contextlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.auth.client_assertion import CLIENT_ASSERTION_TYPE, ClientAssertions
from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.discovery import AuthorizationContext, AuthServerQuirks
from mcp_bridge.auth.errors import (
    AuthError,
    AuthResponseInvalid,
    AuthServerUnavailable,
    ClientRejected,
    LoginRequired,
)
from mcp_bridge.auth.grants import (
    ID_JAG_TOKEN_TYPE,
    ID_TOKEN_TYPE,
    JWT_BEARER_GRANT,
    TOKEN_EXCHANGE_GRANT,
    check_id_token,
    redeem_id_jag,
    request_client_credentials,
    request_id_jag,
)
from mcp_bridge.auth.http_step import HttpResponse, Step
from mcp_bridge.auth.jws import SigningKey, b64url, sign_jwt
from mcp_bridge.auth.machine_login import MachineLogin
from mcp_bridge.auth.settings import Grant, OAuthSettings
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.errors import ConfigError
from tests.fixtures.example_login import AS, ISSUER, MCP, NOW
from tests.fixtures.grant_keys import pem_of
from tests.fixtures.http_steps import finish
from tests.fixtures.oauth_client import NoClients

IDP_ISSUER = "https://idp.example.com"
IDP = replace(AS, issuer=IDP_ISSUER, token_endpoint=f"{IDP_ISSUER}/token")
KEY = SigningKey.from_pem(pem_of(ec.generate_private_key(ec.SECP256R1())), source="k.pem")
SECRET_CLIENT = ClientRegistration(
    ISSUER, "svc", RegistrationMethod.PRE_REGISTERED, "client_secret_basic", client_secret="s"
)
KEY_CLIENT = ClientRegistration(
    ISSUER,
    "svc",
    RegistrationMethod.PRE_REGISTERED,
    "private_key_jwt",
    assertions=ClientAssertions(KEY, clock=lambda: NOW),
)
IDP_CLIENT = replace(SECRET_CLIENT, issuer=IDP_ISSUER, client_id="desktop")


def token_reply(**extra: object) -> HttpResponse:
    return HttpResponse.of_json({"access_token": "new-access", "token_type": "Bearer", **extra})


def error_reply(error: str, description: str = "", status: int = 400) -> HttpResponse:
    return HttpResponse.of_json({"error": error, "error_description": description}, status)


def client_credentials(client: ClientRegistration, **options: Any) -> Step[TokenSet]:
    return request_client_credentials(
        AS,
        client,
        resource=MCP,
        scopes=options.pop("scopes", ("mcp",)),
        quirks=options.pop("quirks", AuthServerQuirks()),
        now=NOW,
    )


def test_client_credentials_with_a_secret_send_basic_and_the_resource() -> None:
    step = client_credentials(SECRET_CLIENT)
    request = next(step)
    assert request.form() == {"grant_type": "client_credentials", "resource": MCP, "scope": "mcp"}
    assert request.header("Authorization") == "Basic " + base64.b64encode(b"svc:s").decode()
    tokens = finish(step, token_reply(expires_in=60, scope="mcp"))
    assert (tokens.access_token, tokens.issuer, tokens.resource) == ("new-access", ISSUER, MCP)
    assert tokens.refresh_token is None
    assert tokens.expires_at == NOW + 60


def test_a_key_client_sends_an_assertion_and_no_secret_nor_client_id() -> None:
    step = client_credentials(KEY_CLIENT)
    form = next(step).form()
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert "client_id" not in form
    assert "client_secret" not in form
    claims = jwt.decode(
        form["client_assertion"],
        KEY.private.public_key(),
        algorithms=["ES256"],
        audience=ISSUER,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["sub"] == "svc"


def test_the_json_retry_carries_an_assertion_of_its_own() -> None:
    """An AS that reads JSON only refuses the form; it may have noted the jti already."""
    step = client_credentials(KEY_CLIENT)
    first = next(step).form()["client_assertion"]
    retried = step.send(
        HttpResponse.of_json(
            {"error": "invalid_request", "error_description": "expected a JSON body"}, 400
        )
    )
    second = json.loads(retried.body)["client_assertion"]
    jtis = [jwt.decode(t, options={"verify_signature": False})["jti"] for t in (first, second)]
    assert jtis[0] != jtis[1]
    tokens = finish(step, token_reply())
    assert tokens.quirks.token_body == "json"


def test_a_key_client_read_back_from_the_vault_without_its_key_says_so() -> None:
    step = client_credentials(replace(KEY_CLIENT, assertions=None))
    with pytest.raises(AuthError) as refused:
        next(step)
    assert "--client-key-file" in refused.value.next_step


@pytest.mark.parametrize(
    ("reply", "error", "words", "fix"),
    [
        (
            error_reply("invalid_client", "wrong client secret", 401),
            ClientRejected,
            "wrong client secret",
            "secret",
        ),
        (error_reply("unauthorized_client"), AuthError, "does not let client svc", "--grant"),
        (error_reply("unsupported_grant_type"), AuthError, "does not let client svc", "--grant"),
        (error_reply("invalid_scope"), AuthError, "scopes", "--scope"),
        (error_reply("server_error", status=503), AuthServerUnavailable, "unavailable", "later"),
        (error_reply("invalid_request", "what?"), AuthError, "what?", "--grant"),
    ],
    ids=["client", "unauthorized", "unsupported", "scope", "outage", "other"],
)
def test_a_refused_client_credentials_grant_names_the_fix(
    reply: HttpResponse, error: type[AuthError], words: str, fix: str
) -> None:
    step = client_credentials(SECRET_CLIENT)
    next(step)
    with pytest.raises(error) as refused:
        step.send(reply)
    assert type(refused.value) is error
    assert words in refused.value.what
    assert fix in refused.value.next_step


def test_a_refused_assertion_points_at_the_key_and_the_clock() -> None:
    step = client_credentials(KEY_CLIENT)
    next(step)
    with pytest.raises(ClientRejected) as refused:
        step.send(error_reply("invalid_client", "the client assertion expired", 401))
    assert "key file" in refused.value.next_step
    assert "clock" in refused.value.next_step


# -- the token exchange and the ID-JAG ----------------------------------------------


def id_jag(**claims: object) -> str:
    return sign_jwt(KEY, {"aud": ISSUER, "resource": MCP, "sub": "alice", **claims})


def exchange() -> Step[str]:
    return request_id_jag(
        IDP, IDP_CLIENT, id_token="the-id-token", audience=ISSUER, resource=MCP, scopes=("mcp",)
    )


def exchange_reply(jag: str, **extra: object) -> HttpResponse:
    doc = {"issued_token_type": ID_JAG_TOKEN_TYPE, "access_token": jag, "token_type": "N_A"}
    return HttpResponse.of_json({**doc, **extra})


def test_the_exchange_asks_the_idp_for_an_id_jag_for_this_server() -> None:
    step = exchange()
    request = next(step)
    assert request.url == f"{IDP_ISSUER}/token"
    assert request.form() == {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "requested_token_type": ID_JAG_TOKEN_TYPE,
        "audience": ISSUER,
        "subject_token": "the-id-token",
        "subject_token_type": ID_TOKEN_TYPE,
        "resource": MCP,
        "scope": "mcp",
    }
    assert request.header(
        "Authorization",
    ).startswith("Basic ")  # type: ignore[union-attr]
    jag = id_jag()
    assert finish(step, exchange_reply(jag)) == jag


@pytest.mark.parametrize(
    ("reply", "words"),
    [
        (HttpResponse.of_json({"access_token": "x", "token_type": "Bearer"}), "without an ID-JAG"),
        (exchange_reply("not-a-jwt"), "not a JWT"),
    ],
)
def test_an_answer_that_is_no_id_jag_is_refused(reply: HttpResponse, words: str) -> None:
    step = exchange()
    next(step)
    with pytest.raises(AuthResponseInvalid) as refused:
        step.send(reply)
    assert words in refused.value.what


@pytest.mark.parametrize(
    ("claims", "named"),
    [({"aud": "https://other.example"}, "aud"), ({"resource": "https://mcp.other/"}, "resource")],
)
def test_an_id_jag_for_another_server_is_not_sent_on(claims: dict[str, object], named: str) -> None:
    step = exchange()
    next(step)
    with pytest.raises(AuthError) as refused:
        step.send(exchange_reply(id_jag(**claims)))
    assert f"for {named}" in refused.value.what
    assert "administrator" in refused.value.next_step


def test_an_id_jag_whose_aud_lists_this_server_is_taken() -> None:
    step = exchange()
    next(step)
    jag = id_jag(aud=["https://other.example", ISSUER])
    assert finish(step, exchange_reply(jag)) == jag


@pytest.mark.parametrize(
    ("reply", "error", "words", "fix"),
    [
        (
            error_reply("invalid_grant", "the ID token expired"),
            LoginRequired,
            "refused the ID token",
            "--id-token-file",
        ),
        (error_reply("access_denied", "policy"), AuthError, "refused an ID-JAG", "--idp-client-id"),
        (error_reply("invalid_target"), AuthError, "refused an ID-JAG", "administrator"),
        (error_reply("invalid_client", "", 401), ClientRejected, "desktop", "--idp-client-id"),
    ],
    ids=["id-token", "denied", "target", "client"],
)
def test_an_idp_refusal_names_the_fix(
    reply: HttpResponse, error: type[AuthError], words: str, fix: str
) -> None:
    step = exchange()
    sent = [next(step)]
    with pytest.raises(error) as refused:  # noqa: PT012 -- the refusal may come after a retry
        while True:
            sent.append(step.send(reply))
    assert words in refused.value.what
    assert fix in refused.value.next_step
    if len(sent) > 1:  # invalid_target: once more without `resource` (it is optional here)
        assert "resource" not in sent[1].form()


def test_the_id_jag_is_redeemed_as_a_jwt_bearer_grant() -> None:
    jag = id_jag()
    step = redeem_id_jag(
        AS,
        KEY_CLIENT,
        jag,
        idp_issuer=IDP_ISSUER,
        resource=MCP,
        scopes=(),
        quirks=AuthServerQuirks(),
        now=NOW,
    )
    form = next(step).form()
    assert (form["grant_type"], form["assertion"], form["resource"]) == (JWT_BEARER_GRANT, jag, MCP)
    assert "scope" not in form
    assert form["client_assertion_type"] == CLIENT_ASSERTION_TYPE
    assert finish(step, token_reply()).access_token == "new-access"


def test_a_refused_id_jag_names_the_identity_provider() -> None:
    step = redeem_id_jag(
        AS,
        SECRET_CLIENT,
        id_jag(),
        idp_issuer=IDP_ISSUER,
        resource=MCP,
        scopes=(),
        quirks=AuthServerQuirks(),
        now=NOW,
    )
    next(step)
    with pytest.raises(AuthError) as refused:
        step.send(error_reply("invalid_grant", "the ID-JAG was used before"))
    assert IDP_ISSUER in refused.value.what
    assert "used before" in refused.value.what
    assert "clock" in refused.value.next_step


# -- the ID token file ---------------------------------------------------------------


def test_an_id_token_is_read_with_its_whitespace_dropped() -> None:
    token = sign_jwt(KEY, {"exp": NOW + 60})
    assert check_id_token(f"  {token}\n", source="/tmp/t", now=NOW) == token


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "does not hold an ID token"),
        ("x.y", "does not hold"),
        (sign_jwt(KEY, {"exp": NOW - 1}), "expired at"),
    ],
)
def test_an_unusable_id_token_asks_for_a_new_sign_in(text: str, words: str) -> None:
    with pytest.raises(LoginRequired) as refused:
        check_id_token(text, source="/tmp/t", now=NOW)
    assert words in refused.value.what
    assert "/tmp/t" in refused.value.next_step


@given(
    st.dictionaries(
        st.text(max_size=10),
        st.from_type(type(None)) | st.integers() | st.floats() | st.text(max_size=20),
        max_size=5,
    )
)
def test_any_id_token_claims_give_a_token_or_login_required(claims: dict[str, object]) -> None:
    token = f"e30.{b64url(json.dumps(claims).encode())}.c2ln"
    with contextlib.suppress(LoginRequired):
        assert check_id_token(token, source="f", now=NOW) == token


@given(
    st.dictionaries(
        st.sampled_from(["access_token", "issued_token_type", "token_type", "aud"]),
        st.none()
        | st.integers()
        | st.text(max_size=30)
        | st.lists(st.text(max_size=5), max_size=2),
    )
)
def test_any_exchange_answer_is_an_id_jag_or_an_auth_error(doc: dict[str, object]) -> None:
    step = exchange()
    next(step)
    with contextlib.suppress(AuthError):
        finish(step, HttpResponse.of_json(doc))


async def test_a_key_of_an_algorithm_the_server_does_not_verify_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "key.pem"
    key_file.write_bytes(pem_of(ec.generate_private_key(ec.SECP256R1())))
    key_file.chmod(0o600)
    metadata = replace(AS, token_endpoint_auth_signing_alg_values_supported=("RS256", "PS256"))
    context = AuthorizationContext(MCP, ISSUER, metadata, None)
    settings = OAuthSettings(
        grant=Grant.CLIENT_CREDENTIALS, client_id="svc", client_key_file=str(key_file)
    )

    def no_http() -> aiohttp.ClientSession:
        raise AssertionError("nothing may be sent")

    login = MachineLogin(MCP, settings, NoClients(), policy=UrlPolicy.for_server(MCP), http=no_http)
    tokens = TokenSet(access_token="old", issuer=ISSUER, resource=MCP)
    with pytest.raises(ConfigError) as refused:
        await login.renew(context, SECRET_CLIENT, tokens)
    assert "RS256, PS256" in refused.value.what
    assert "signs ES256" in refused.value.what
