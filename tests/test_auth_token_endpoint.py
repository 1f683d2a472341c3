"""Token endpoint steps (RFC 6749 §4.1.3, §5, §6; RFC 8707; RFC 7009) and TokenSet."""

from __future__ import annotations

import base64
import json
from dataclasses import replace

import pytest

from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.errors import (
    AuthError,
    AuthResponseInvalid,
    AuthServerUnavailable,
    ClientRejected,
    LoginRequired,
)
from mcp_bridge.auth.http_step import HttpResponse
from mcp_bridge.auth.token_endpoint import exchange_code, refresh_tokens, revoke_token
from mcp_bridge.auth.token_set import TokenSet
from tests.fixtures.example_login import (
    AS,
    ISSUER,
    MCP,
    NOW,
    PENDING,
    PUBLIC,
    REDIRECT,
    TOKENS,
    token_reply,
)
from tests.fixtures.http_steps import finish, returned_without_io


def test_code_exchange_sends_verifier_redirect_and_resource() -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "the-code", now=NOW)
    request = next(step)
    assert (request.method, request.url) == ("POST", f"{ISSUER}/token")
    assert request.header("Content-Type") == "application/x-www-form-urlencoded"
    assert request.form() == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": REDIRECT,
        "code_verifier": PENDING.code_verifier,
        "resource": MCP,
        "client_id": "client-1",
    }
    assert "the-code" not in repr(request)
    tokens = finish(step, token_reply(expires_in=3600, refresh_token="r1"))
    assert tokens == TokenSet(
        access_token="new-access",
        issuer=ISSUER,
        resource=MCP,
        refresh_token="r1",
        expires_at=NOW + 3600,
        scopes=("files:read",),  # RFC 6749 §5.1: omitted scope = as requested
    )


def test_client_secret_post_puts_the_secret_in_the_form() -> None:
    client = ClientRegistration(
        ISSUER, "client-1", RegistrationMethod.DCR, "client_secret_post", (), "pw"
    )
    form = next(exchange_code(AS, client, PENDING, "code", now=NOW)).form()
    assert (form["client_id"], form["client_secret"]) == ("client-1", "pw")


def test_client_secret_basic_uses_form_encoded_credentials_in_the_header() -> None:
    client = ClientRegistration(
        ISSUER, "c:1", RegistrationMethod.DCR, "client_secret_basic", (), "p w"
    )
    pending = replace(PENDING, client_id="c:1")
    request = next(exchange_code(AS, client, pending, "code", now=NOW))
    header = request.header("Authorization")
    assert header is not None
    assert base64.b64decode(header.removeprefix("Basic ")).decode() == "c%3A1:p+w"
    assert "client_secret" not in request.form()
    assert "client_id" not in request.form()


def test_code_for_another_issuer_is_not_exchanged() -> None:
    other = ClientRegistration(ISSUER, "someone-else", RegistrationMethod.DCR, "none")
    with pytest.raises(AuthError, match="another"):
        next(exchange_code(AS, other, PENDING, "code", now=NOW))


@pytest.mark.parametrize("token_type", ["bearer", "BEARER", "Bearer"])
def test_token_type_bearer_is_matched_case_insensitively(token_type: str) -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW)
    next(step)
    assert finish(step, token_reply(token_type=token_type)).token_type == "Bearer"


@pytest.mark.parametrize(
    "reply",
    [
        {"access_token": "a", "token_type": "DPoP"},
        {"access_token": "a"},
        {"token_type": "Bearer"},
        {"access_token": "", "token_type": "Bearer"},
        {"access_token": 5, "token_type": "Bearer"},
        {"access_token": "a", "token_type": "Bearer", "refresh_token": 7},
        ["access_token"],
    ],
)
def test_malformed_token_response_is_refused(reply: object) -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW)
    next(step)
    with pytest.raises(AuthResponseInvalid):
        step.send(HttpResponse.of_json(reply))


def test_granted_scope_and_string_expires_in_are_read() -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW)
    next(step)
    tokens = finish(step, token_reply(scope="files:read extra", expires_in="60"))
    assert tokens.scopes == ("files:read", "extra")
    assert tokens.expires_at == NOW + 60


def test_negative_expires_in_is_refused_not_read_as_never_expires() -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW)
    next(step)
    with pytest.raises(AuthResponseInvalid, match="expires_in -5"):
        step.send(token_reply(expires_in=-5))


def error_reply(status: int, error: str | None = None, **headers: str) -> HttpResponse:
    body = json.dumps({"error": error, "error_description": "why"}).encode() if error else b""
    return HttpResponse(status, body, tuple(headers.items()))


def test_invalid_grant_means_log_in_again() -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    with pytest.raises(LoginRequired, match="Log in again"):
        step.send(error_reply(400, "invalid_grant"))


def test_invalid_client_means_register_again() -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    with pytest.raises(ClientRejected, match="Register"):
        step.send(error_reply(401, "invalid_client"))


@pytest.mark.parametrize(
    "response",
    [
        error_reply(503),
        error_reply(500, "server_error"),
        error_reply(400, "temporarily_unavailable"),
    ],
)
def test_server_trouble_is_retryable(response: HttpResponse) -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    with pytest.raises(AuthServerUnavailable) as raised:
        step.send(response)
    assert raised.value.retryable


def test_rate_limit_carries_retry_after() -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    with pytest.raises(AuthServerUnavailable) as raised:
        step.send(error_reply(429, **{"Retry-After": "17"}))
    assert raised.value.retry_after_s == 17


def test_other_token_errors_carry_the_sanitized_as_error() -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    with pytest.raises(AuthError, match="invalid_scope: why"):
        step.send(error_reply(400, "invalid_scope"))


def test_refresh_sends_refresh_token_resource_and_granted_scope() -> None:
    request = next(refresh_tokens(AS, PUBLIC, TOKENS, now=NOW))
    assert request.form() == {
        "grant_type": "refresh_token",
        "refresh_token": "old-refresh",
        "resource": MCP,
        "scope": "files:read",  # always: Entra refuses a refresh without it (AADSTS90009)
        "client_id": "client-1",
    }


def test_refresh_reply_without_refresh_token_keeps_the_old_one() -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    fresh = finish(step, token_reply(expires_in=60))
    assert (fresh.access_token, fresh.refresh_token) == ("new-access", "old-refresh")
    assert fresh.scopes == TOKENS.scopes


def test_rotated_refresh_token_replaces_the_old_one() -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    assert finish(step, token_reply(refresh_token="rotated")).refresh_token == "rotated"


def test_refresh_without_refresh_token_requires_login() -> None:
    with pytest.raises(LoginRequired):
        next(refresh_tokens(AS, PUBLIC, replace(TOKENS, refresh_token=None), now=NOW))


def test_refresh_never_sends_tokens_to_another_issuer() -> None:
    with pytest.raises(AuthError, match="issued by"):
        next(
            refresh_tokens(AS, PUBLIC, replace(TOKENS, issuer="https://other.example.com"), now=NOW)
        )


def test_revocation_revokes_the_refresh_token() -> None:
    step = revoke_token(AS, PUBLIC, TOKENS)
    request = next(step)
    assert request.url == f"{ISSUER}/revoke"
    assert request.form() == {
        "token": "old-refresh",
        "token_type_hint": "refresh_token",
        "client_id": "client-1",
    }
    assert finish(step, HttpResponse(200)) is True


def test_revocation_without_endpoint_does_nothing() -> None:
    step = revoke_token(replace(AS, revocation_endpoint=None), PUBLIC, TOKENS)
    assert returned_without_io(step) is False


def test_revocation_of_unsupported_token_type_is_not_an_error() -> None:
    step = revoke_token(AS, PUBLIC, TOKENS)
    next(step)
    assert finish(step, error_reply(400, "unsupported_token_type")) is False


def test_token_set_state_and_vault_round_trip() -> None:
    assert TOKENS.is_expired(NOW)
    assert not TokenSet("a", ISSUER, MCP, expires_at=NOW + 100).is_expired(NOW, margin_s=60)
    assert TokenSet("a", ISSUER, MCP, expires_at=NOW + 30).is_expired(NOW, margin_s=60)
    assert not TokenSet("a", ISSUER, MCP).is_expired(NOW)
    assert TokenSet.from_json(json.loads(json.dumps(TOKENS.to_json()))) == TOKENS
    assert TOKENS.authorization_header() == "Bearer old-access"
    assert "old-access" not in repr(TOKENS)
    assert "old-refresh" not in repr(TOKENS)


@pytest.mark.parametrize("doc", [None, {}, {"access_token": "a", "issuer": ISSUER, "resource": 1}])
def test_damaged_token_record_is_refused(doc: object) -> None:
    with pytest.raises(AuthResponseInvalid, match="damaged"):
        TokenSet.from_json(doc)
