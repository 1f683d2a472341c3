"""A token endpoint that reads JSON bodies only (docs/oauth-in-the-wild.md §6): the grant
that meets a refused form goes out once more as JSON, the issuer is remembered as JSON-only
beside its client registration, and later grants (refresh, revocation, another process)
start as JSON. Sans-I/O first, then against the fixture AS in `token_json_only` mode."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import aiohttp
import pytest

from mcp_bridge.auth.auth_records import (
    CLIENTS,
    put_client,
    put_tokens,
    read_quirks,
    read_stored_client,
)
from mcp_bridge.auth.discovery import AuthServerQuirks
from mcp_bridge.auth.errors import AuthError, AuthServerUnavailable, LoginRequired
from mcp_bridge.auth.http_step import HttpRequest, HttpResponse
from mcp_bridge.auth.token_endpoint import exchange_code, refresh_tokens, revoke_token
from mcp_bridge.store.memory import MemoryVault
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.example_login import AS, ISSUER, NOW, PENDING, PUBLIC, TOKENS
from tests.fixtures.http_steps import finish
from tests.fixtures.oauth_client import OAuthPeers, use_follower
from tests.fixtures.vault_checks import keyfile_vault

JSON_ONLY = AuthServerQuirks(token_body="json")
TOKEN_REPLY = HttpResponse.of_json({"access_token": "new", "token_type": "Bearer"})


def refusal(status: int, error: str | None = None, description: str = "") -> HttpResponse:
    doc = {"error": error, "error_description": description} if error else {"message": description}
    return HttpResponse.of_json(doc, status)


def body_of(request: HttpRequest) -> dict[str, str]:
    if request.header("Content-Type") == "application/json":
        doc: dict[str, str] = json.loads(request.body)
        return doc
    return request.form()


# -- sans-I/O: which answers mean "not this kind of body" --------------------------------


FORM_REFUSALS = [
    refusal(400, "invalid_request", "expected JSON"),
    refusal(400, "invalid_request", "Missing required parameter: grant_type"),
    refusal(400, None, "Unexpected token g in JSON at position 0"),
    HttpResponse(400, b"Bad Request: could not parse body"),
    HttpResponse(415, b""),
    HttpResponse(500, b"Internal Server Error"),
]


@pytest.mark.parametrize("answer", FORM_REFUSALS, ids=lambda r: f"{r.status}:{r.body[:30]!r}")
def test_a_refused_form_is_sent_once_more_as_json_and_remembered(answer: HttpResponse) -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "the-code", now=NOW)
    form = next(step)
    assert form.header("Content-Type") == "application/x-www-form-urlencoded"
    again = step.send(answer)
    assert again.header("Content-Type") == "application/json"
    assert body_of(again) == form.form()  # the same grant, field for field
    tokens = finish(step, TOKEN_REPLY)
    assert tokens.quirks == JSON_ONLY


@pytest.mark.parametrize(
    "answer",
    [
        refusal(400, "invalid_grant", "code expired"),
        refusal(400, "invalid_request", "code_verifier does not match"),
        refusal(400, "invalid_scope", "body of work"),  # an OAuth error about something else
        HttpResponse(503, b"down"),
        refusal(500, "server_error", "the database is down"),  # it read the request
        refusal(401, "invalid_client"),
    ],
    ids=lambda r: f"{r.status}:{r.body[:40]!r}",
)
def test_other_refusals_are_not_retried(answer: HttpResponse) -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "the-code", now=NOW)
    next(step)
    with pytest.raises(AuthError):
        step.send(answer)


def test_when_json_is_refused_too_the_first_answer_tells() -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "the-code", now=NOW)
    next(step)
    step.send(HttpResponse(500, b"Internal Server Error"))  # an outage, as it turns out
    with pytest.raises(AuthServerUnavailable, match="HTTP 500"):
        step.send(HttpResponse(415, b"form only here"))


def test_a_json_retry_answered_with_an_oauth_error_raises_that_error() -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "the-code", now=NOW)
    next(step)
    step.send(refusal(400, "invalid_request", "expected JSON"))
    with pytest.raises(LoginRequired):
        step.send(refusal(400, "invalid_grant", "code already used"))


def test_a_remembered_json_only_issuer_gets_json_first_on_every_grant() -> None:
    exchange = next(exchange_code(AS, PUBLIC, replace(PENDING, quirks=JSON_ONLY), "c", now=NOW))
    assert exchange.header("Content-Type") == "application/json"
    assert body_of(exchange)["code_verifier"] == PENDING.code_verifier

    step = refresh_tokens(AS, PUBLIC, replace(TOKENS, quirks=JSON_ONLY), now=NOW)
    request = next(step)
    assert request.header("Content-Type") == "application/json"
    assert body_of(request)["refresh_token"] == "old-refresh"
    fresh = finish(step, TOKEN_REPLY)
    assert fresh.quirks == JSON_ONLY  # carried on to the next refresh

    revocation = next(revoke_token(AS, PUBLIC, replace(TOKENS, quirks=JSON_ONLY)))
    assert revocation.header("Content-Type") == "application/json"


def test_a_500_to_json_is_an_outage_not_a_reason_to_switch_back() -> None:
    step = refresh_tokens(AS, PUBLIC, replace(TOKENS, quirks=JSON_ONLY), now=NOW)
    next(step)
    with pytest.raises(AuthServerUnavailable):
        step.send(HttpResponse(500, b"Internal Server Error"))


def test_a_remembered_issuer_that_takes_forms_again_is_answered_in_form() -> None:
    step = refresh_tokens(AS, PUBLIC, replace(TOKENS, quirks=JSON_ONLY), now=NOW)
    next(step)
    form = step.send(HttpResponse(415, b""))
    assert form.header("Content-Type") == "application/x-www-form-urlencoded"
    assert finish(step, TOKEN_REPLY).quirks == AuthServerQuirks()


def test_client_authentication_goes_in_the_json_body_or_the_basic_header() -> None:
    confidential = replace(
        PUBLIC, token_endpoint_auth_method="client_secret_post", client_secret="s3cret"
    )
    step = refresh_tokens(AS, confidential, replace(TOKENS, quirks=JSON_ONLY), now=NOW)
    assert body_of(next(step))["client_secret"] == "s3cret"
    basic = replace(confidential, token_endpoint_auth_method="client_secret_basic")
    request = next(refresh_tokens(AS, basic, replace(TOKENS, quirks=JSON_ONLY), now=NOW))
    assert (request.header("Authorization") or "").startswith("Basic ")
    assert "client_secret" not in body_of(request)


# -- the vault: the quirk is kept beside the client registration ------------------------


async def test_the_quirk_is_filed_with_the_issuer_and_old_records_read_as_form() -> None:
    vault = MemoryVault()
    async with vault.transaction() as txn:
        put_client(txn, PUBLIC)
        assert read_quirks(txn, ISSUER) == AuthServerQuirks()  # a record from before quirks
        put_tokens(txn, replace(TOKENS, quirks=JSON_ONLY), received_at=NOW)
        assert read_quirks(txn, ISSUER) == JSON_ONLY
        stored = read_stored_client(txn, ISSUER)
        assert stored is not None
        assert stored.quirks == JSON_ONLY
        assert stored.registration == PUBLIC  # the registration reads as before
        # A new registration at the same AS keeps what the AS was found to need.
        put_client(txn, replace(PUBLIC, client_id="client-2"), scopes=("files:read",))
        assert read_quirks(txn, ISSUER) == JSON_ONLY
        record = txn.get(CLIENTS, ISSUER)
        assert record is not None
        txn.put(CLIENTS, ISSUER, {**record, "x_mcp_bridge_quirks": "garbage"})
        assert read_quirks(txn, ISSUER) == AuthServerQuirks()  # damaged: the RFC default
        assert read_stored_client(txn, ISSUER) is not None


# -- end to end: the fixture AS in token_json_only mode ---------------------------------


@pytest.mark.parametrize("form_refusal", [400, 500])
async def test_login_refresh_and_logout_against_a_json_only_token_endpoint(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    oauth: OAuthPeers,
    http: aiohttp.ClientSession,
    tmp_path: Path,
    form_refusal: int,
) -> None:
    server = auth_server(token_json_only=True, token_form_refusal=form_refusal)
    use_follower(monkeypatch)
    credentials = oauth.credentials(
        server.mcp_url, keyfile_vault(tmp_path), interactive=True, background_refresh=False
    )
    await credentials.login()
    stats = server.stats()
    assert (stats["token_form_requests"], stats["token_json_requests"]) == (1, 1)
    assert stats["token_exchanges"] == 1

    await credentials.manager.refresh()  # the second grant: JSON first, no form at all
    stats = server.stats()
    assert (stats["token_form_requests"], stats["token_json_requests"]) == (1, 2)
    assert stats["refreshes"] == 1

    # Another process over the same vault starts with JSON too.
    later = oauth.token_manager(server.mcp_url, keyfile_vault(tmp_path), http)
    await later.load()
    assert later.tokens is not None
    await later.refresh()
    stats = server.stats()
    assert (stats["token_form_requests"], stats["token_json_requests"]) == (1, 3)
    assert stats["refreshes"] == 2
    assert stats["reuse_detections"] == 0

    assert await later.forget() is True  # RFC 7009 revocation, as JSON too
    assert server.stats()["revocations"] == 1
