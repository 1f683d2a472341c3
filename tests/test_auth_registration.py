"""Client registration (MCP Client Registration): the decision, the DCR step, the vault record."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mcp_bridge.auth.client_identity import (
    ClientRegistration,
    PreRegisteredClient,
    RegistrationMethod,
)
from mcp_bridge.auth.dynamic_registration import ClientMetadata
from mcp_bridge.auth.errors import AuthResponseInvalid, AuthServerUnavailable, RegistrationFailed
from mcp_bridge.auth.http_step import HttpResponse
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.registration import check_cimd_url, obtain_client, plan_client
from mcp_bridge.errors import ConfigError
from tests.fixtures.http_steps import finish, returned_without_io

ISSUER = "https://auth.example.com"
REDIRECT = "http://127.0.0.1:33418/callback"
ME = ClientMetadata(redirect_uris=(REDIRECT,))
CIMD_URL = "https://mcp-bridge.example.org/oauth/client.json"
NOW = 1_000_000.0
AS = AuthServerMetadata(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/authorize",
    token_endpoint=f"{ISSUER}/token",
    registration_endpoint=f"{ISSUER}/register",
    code_challenge_methods_supported=("S256",),
)
AS_WITH_CIMD = AuthServerMetadata(
    issuer=ISSUER,
    authorization_endpoint=f"{ISSUER}/authorize",
    token_endpoint=f"{ISSUER}/token",
    registration_endpoint=f"{ISSUER}/register",
    client_id_metadata_document_supported=True,
)


def dcr(**reply: object) -> tuple[dict[str, object], ClientRegistration]:
    """Run DCR against AS, answering `reply`; return the request body and the result."""
    step = obtain_client(AS, ME, now=NOW)
    request = next(step)
    assert (request.method, request.url) == ("POST", f"{ISSUER}/register")
    body = json.loads(request.body)
    return body, finish(step, HttpResponse.of_json(reply, status=201))


def test_dcr_registers_a_native_public_client_with_refresh_grant() -> None:
    body, registration = dcr(client_id="abc", redirect_uris=[REDIRECT])
    assert body["application_type"] == "native"
    assert body["token_endpoint_auth_method"] == "none"
    assert body["grant_types"] == ["authorization_code", "refresh_token"]
    assert body["redirect_uris"] == [REDIRECT]
    assert registration == ClientRegistration(
        issuer=ISSUER,
        client_id="abc",
        method=RegistrationMethod.DCR,
        token_endpoint_auth_method="none",
        redirect_uris=(REDIRECT,),
    )


def test_dcr_secret_handed_to_a_public_client_is_used_as_returned() -> None:
    _, registration = dcr(
        client_id="abc", client_secret="s3cret", token_endpoint_auth_method="client_secret_post"
    )
    assert registration.token_endpoint_auth_method == "client_secret_post"
    assert registration.client_secret == "s3cret"
    assert "s3cret" not in repr(registration)


def test_dcr_secret_without_method_defaults_to_client_secret_basic() -> None:
    _, registration = dcr(client_id="abc", client_secret="s3cret")
    assert registration.token_endpoint_auth_method == "client_secret_basic"


def test_dcr_secret_method_without_secret_is_refused() -> None:
    with pytest.raises(RegistrationFailed, match="without a secret"):
        dcr(client_id="abc", token_endpoint_auth_method="client_secret_basic")


def test_dcr_private_key_jwt_registration_is_refused() -> None:
    with pytest.raises(RegistrationFailed, match="private_key_jwt"):
        dcr(client_id="abc", token_endpoint_auth_method="private_key_jwt")


def test_dcr_response_without_client_id_is_refused() -> None:
    with pytest.raises(AuthResponseInvalid, match="no client_id"):
        dcr(client_secret="x")


def test_dcr_secret_expiry_is_recorded() -> None:
    _, registration = dcr(client_id="a", client_secret="s", client_secret_expires_at=NOW + 60)
    assert registration.client_secret_expires_at == NOW + 60
    _, forever = dcr(client_id="a", client_secret="s", client_secret_expires_at=0)
    assert forever.client_secret_expires_at is None


def test_dcr_redirect_uri_rejection_is_surfaced_clearly() -> None:
    step = obtain_client(AS, ME, now=NOW)
    next(step)
    reply = {"error": "invalid_redirect_uri", "error_description": "loopback\nnot allowed"}
    with pytest.raises(RegistrationFailed, match="refused our redirect URI") as raised:
        step.send(HttpResponse.of_json(reply, status=400))
    assert REDIRECT in str(raised.value)
    assert "\n" not in str(raised.value)


def test_dcr_server_error_is_retryable() -> None:
    step = obtain_client(AS, ME, now=NOW)
    next(step)
    with pytest.raises(AuthServerUnavailable):
        step.send(HttpResponse(503, b"busy"))


def test_preregistered_client_comes_before_cimd_and_dcr() -> None:
    client = PreRegisteredClient("configured", issuer=ISSUER)
    step = obtain_client(
        AS_WITH_CIMD, ME, pre_registered=client, client_metadata_url=CIMD_URL, now=NOW
    )
    registration = returned_without_io(step)
    assert registration.method is RegistrationMethod.PRE_REGISTERED
    assert registration.token_endpoint_auth_method == "none"


def test_preregistered_secret_uses_an_advertised_method() -> None:
    as_post_only = AuthServerMetadata(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/a",
        token_endpoint=f"{ISSUER}/t",
        token_endpoint_auth_methods_supported=("client_secret_post",),
    )
    client = PreRegisteredClient("configured", client_secret="pw")
    registration = returned_without_io(
        obtain_client(as_post_only, ME, pre_registered=client, now=NOW)
    )
    assert registration.token_endpoint_auth_method == "client_secret_post"


def test_preregistered_client_for_another_issuer_is_an_error() -> None:
    client = PreRegisteredClient("configured", issuer="https://old-auth.example.com")
    with pytest.raises(ConfigError, match="old-auth"):
        returned_without_io(obtain_client(AS, ME, pre_registered=client, now=NOW))


def test_cimd_used_when_the_as_advertises_it() -> None:
    step = obtain_client(AS_WITH_CIMD, ME, client_metadata_url=CIMD_URL, now=NOW)
    registration = returned_without_io(step)
    assert registration.method is RegistrationMethod.CIMD
    assert registration.client_id == CIMD_URL
    assert registration.client_secret is None


def test_cimd_not_advertised_falls_back_to_dcr() -> None:
    step = obtain_client(AS, ME, client_metadata_url=CIMD_URL, now=NOW)
    assert next(step).url == f"{ISSUER}/register"


@pytest.mark.parametrize(
    "url",
    [
        "http://mcp-bridge.example.org/client.json",
        "https://mcp-bridge.example.org",
        "https://mcp-bridge.example.org/",
        "https://mcp-bridge.example.org/client.json#x",
        "https://me@mcp-bridge.example.org/client.json",
        "https://mcp-bridge.example.org/a/../client.json",
    ],
)
def test_cimd_url_must_be_https_with_a_clean_path(url: str) -> None:
    with pytest.raises(ConfigError):
        check_cimd_url(url)


def test_no_registration_option_asks_for_a_configured_client_id() -> None:
    bare = AuthServerMetadata(
        issuer=ISSUER, authorization_endpoint=f"{ISSUER}/a", token_endpoint=f"{ISSUER}/t"
    )
    with pytest.raises(RegistrationFailed, match="--client-id") as refused:
        returned_without_io(obtain_client(bare, ME, now=NOW))
    assert "--header 'Authorization: Bearer <token>'" in refused.value.next_step


def stored(**overrides: object) -> ClientRegistration:
    fields: dict[str, object] = {
        "issuer": ISSUER,
        "client_id": "old",
        "method": RegistrationMethod.DCR,
        "token_endpoint_auth_method": "none",
        "redirect_uris": (REDIRECT,),
    }
    fields.update(overrides)
    return ClientRegistration(**fields)  # type: ignore[arg-type]


def test_stored_registration_for_this_issuer_is_reused() -> None:
    record = stored()
    assert returned_without_io(obtain_client(AS, ME, stored=record, now=NOW)) is record


def test_registered_for_a_different_as_means_register_again() -> None:
    record = stored(issuer="https://previous-auth.example.com")
    assert not record.is_for(ISSUER)
    step = obtain_client(AS, ME, stored=record, now=NOW)
    assert next(step).url == f"{ISSUER}/register"


def test_stored_dcr_registration_without_this_redirect_uri_registers_again() -> None:
    record = stored(redirect_uris=("http://127.0.0.1:1111/callback",))
    assert next(obtain_client(AS, ME, stored=record, now=NOW)).url == f"{ISSUER}/register"


def test_stored_registration_with_expired_secret_registers_again() -> None:
    record = stored(client_secret="s", client_secret_expires_at=NOW - 1)
    assert next(obtain_client(AS, ME, stored=record, now=NOW)).url == f"{ISSUER}/register"


def test_registration_round_trips_through_the_vault_json() -> None:
    record = stored(client_secret="s", client_secret_expires_at=NOW + 5)
    assert ClientRegistration.from_json(json.loads(json.dumps(record.to_json()))) == record
    assert "'s'" not in repr(record)


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {},
        {"issuer": ISSUER, "client_id": 5},
        {"issuer": ISSUER, "client_id": "a", "method": "x"},
    ],
)
def test_damaged_registration_record_is_refused(doc: object) -> None:
    with pytest.raises(AuthResponseInvalid, match="damaged"):
        ClientRegistration.from_json(doc)


def test_configured_client_wins_over_a_stored_dynamic_registration() -> None:
    client = PreRegisteredClient("configured")
    registration = returned_without_io(
        obtain_client(AS, ME, stored=stored(), pre_registered=client, now=NOW)
    )
    assert registration.client_id == "configured"


def test_cimd_wins_over_a_stored_dynamic_registration() -> None:
    step = obtain_client(AS_WITH_CIMD, ME, stored=stored(), client_metadata_url=CIMD_URL, now=NOW)
    assert returned_without_io(step).method is RegistrationMethod.CIMD


PLAN_CASES = {
    "pre-registered": ({"pre_registered": PreRegisteredClient("by-hand")}, AS),
    "cimd": ({"client_metadata_url": CIMD_URL}, AS_WITH_CIMD),
    "cimd not advertised": ({"client_metadata_url": CIMD_URL}, AS),
    "stored dcr": ({"stored": stored()}, AS),
    "stored for another redirect": (
        {"stored": stored(redirect_uris=("http://127.0.0.1:1/callback",))},
        AS,
    ),
    "nothing": ({}, AuthServerMetadata(ISSUER, f"{ISSUER}/a", f"{ISSUER}/t")),
}


@pytest.mark.parametrize(("given", "metadata"), PLAN_CASES.values(), ids=PLAN_CASES.keys())
def test_the_plan_is_what_obtain_client_then_does(
    given: dict[str, Any], metadata: AuthServerMetadata
) -> None:
    """`doctor` reports plan_client's answer: it must be the login's own decision."""
    plan = plan_client(metadata, REDIRECT, now=NOW, **given)
    step = obtain_client(metadata, ME, now=NOW, **given)
    if plan.method is None:
        with pytest.raises(RegistrationFailed):
            next(step)
        return
    if plan.method is RegistrationMethod.DCR and plan.reuses is None:
        assert next(step).url == f"{ISSUER}/register"  # it would register
        return
    obtained = returned_without_io(step)
    assert obtained.method is plan.method
    if plan.reuses is not None:
        assert obtained is plan.reuses
