"""Discovery steps (MCP Authorization Server Discovery; 2025-03-26 Authorization) and the
metadata they parse (RFC 9728, RFC 8414), driven by hand with next()/send(): no sockets."""

from __future__ import annotations

import pytest

from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.discovery import (
    AuthorizationContext,
    auth_server_metadata_urls,
    discover,
    find_auth_server_metadata,
    find_legacy_auth_server,
    find_resource_metadata,
    resource_metadata_urls,
)
from mcp_bridge.auth.errors import (
    AuthResponseInvalid,
    AuthServerUnavailable,
    DiscoveryFailed,
    NoAuthorizationServer,
    UrlRefused,
)
from mcp_bridge.auth.http_step import HttpResponse
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.urlpolicy import UrlPolicy
from tests.fixtures.http_steps import finish

MCP = "https://mcp.example.com/api/mcp"
ISSUER = "https://auth.example.com"
POLICY = UrlPolicy.for_server(MCP)
NOT_FOUND = HttpResponse(404)


def as_doc(issuer: str = ISSUER, **extra: object) -> dict[str, object]:
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "registration_endpoint": f"{issuer}/register",
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        **extra,
    }


def prm_doc(resource: str = MCP, **extra: object) -> dict[str, object]:
    return {"resource": resource, "authorization_servers": [ISSUER], **extra}


# --- PRM (RFC 9728) -------------------------------------------------------------------


def test_prm_urls_are_path_inserted_then_root() -> None:
    assert resource_metadata_urls("https://MCP.example.com/api/mcp/") == [
        "https://mcp.example.com/.well-known/oauth-protected-resource/api/mcp",
        "https://mcp.example.com/.well-known/oauth-protected-resource",
    ]


def test_prm_at_root_server_asks_only_the_root_url() -> None:
    assert resource_metadata_urls("https://mcp.example.com") == [
        "https://mcp.example.com/.well-known/oauth-protected-resource"
    ]


def test_prm_challenge_url_is_fetched_first() -> None:
    challenge = BearerChallenge(resource_metadata="https://mcp.example.com/prm/x")
    step = find_resource_metadata(MCP, challenge, POLICY)
    assert next(step).url == "https://mcp.example.com/prm/x"
    prm = finish(step, HttpResponse.of_json(prm_doc()))
    assert prm is not None
    assert prm.authorization_servers == (ISSUER,)


def test_prm_challenge_url_404_falls_back_to_well_known() -> None:
    challenge = BearerChallenge(resource_metadata="https://mcp.example.com/prm/x")
    step = find_resource_metadata(MCP, challenge, POLICY)
    next(step)
    request = step.send(NOT_FOUND)
    assert request.url == "https://mcp.example.com/.well-known/oauth-protected-resource/api/mcp"


def test_prm_challenge_url_into_private_network_is_refused() -> None:
    challenge = BearerChallenge(resource_metadata="https://169.254.169.254/latest")
    with pytest.raises(UrlRefused):
        next(find_resource_metadata(MCP, challenge, POLICY))


def test_prm_path_form_404_falls_back_to_root() -> None:
    step = find_resource_metadata(MCP, None, POLICY)
    assert next(step).url == "https://mcp.example.com/.well-known/oauth-protected-resource/api/mcp"
    assert (
        step.send(NOT_FOUND).url == "https://mcp.example.com/.well-known/oauth-protected-resource"
    )
    prm = finish(step, HttpResponse.of_json(prm_doc("https://mcp.example.com")))
    assert prm is not None
    assert prm.resource == "https://mcp.example.com"


def test_prm_absent_everywhere_returns_none() -> None:
    step = find_resource_metadata(MCP, None, POLICY)
    next(step)
    step.send(NOT_FOUND)
    assert finish(step, NOT_FOUND) is None


def test_prm_server_errors_do_not_fall_through_to_legacy() -> None:
    step = find_resource_metadata(MCP, None, POLICY)
    next(step)
    step.send(HttpResponse(503))
    with pytest.raises(AuthServerUnavailable):
        step.send(NOT_FOUND)


def test_prm_for_another_resource_is_refused() -> None:
    step = find_resource_metadata(MCP, None, POLICY)
    next(step)
    with pytest.raises(AuthResponseInvalid, match="RFC 9728"):
        step.send(HttpResponse.of_json(prm_doc("https://other.example.com/api/mcp")))


def test_prm_for_a_sibling_path_is_refused() -> None:
    step = find_resource_metadata(MCP, None, POLICY)
    next(step)
    with pytest.raises(AuthResponseInvalid):
        step.send(HttpResponse.of_json(prm_doc("https://mcp.example.com/api/mcp2")))


def test_prm_resource_compared_canonically() -> None:
    step = find_resource_metadata(MCP, None, POLICY)
    next(step)
    prm = finish(step, HttpResponse.of_json(prm_doc("HTTPS://MCP.EXAMPLE.COM:443/api/mcp")))
    assert prm is not None
    assert prm.resource == MCP


@pytest.mark.parametrize(
    "doc",
    [
        ["not", "an", "object"],
        {"resource": MCP},
        {"resource": MCP, "authorization_servers": []},
        {"resource": MCP, "authorization_servers": "https://auth.example.com"},
        {"resource": MCP, "authorization_servers": [ISSUER], "scopes_supported": "a b"},
        {"resource": 42, "authorization_servers": [ISSUER]},
        {"resource": MCP, "authorization_servers": ["javascript:alert(1)"]},
        {"resource": MCP, "authorization_servers": ["http://auth.example.com"]},
        {"resource": MCP, "authorization_servers": [ISSUER] * 5000},
    ],
)
def test_hostile_prm_is_refused_with_a_clear_error(doc: object) -> None:
    step = find_resource_metadata(MCP, None, POLICY)
    next(step)
    # Naming no authorization server is NoAuthorizationServer (tests/test_auth_static_token.py).
    with pytest.raises((AuthResponseInvalid, UrlRefused, NoAuthorizationServer)):
        step.send(HttpResponse.of_json(doc))


def test_prm_that_is_not_json_is_refused() -> None:
    step = find_resource_metadata(MCP, None, POLICY)
    next(step)
    with pytest.raises(AuthResponseInvalid, match="not valid JSON"):
        step.send(HttpResponse(200, b"<html>hello</html>"))


# --- AS metadata (RFC 8414 / OIDC) ----------------------------------------------------


def test_as_metadata_order_for_issuer_with_path() -> None:
    assert auth_server_metadata_urls("https://auth.example.com/tenant1") == [
        "https://auth.example.com/.well-known/oauth-authorization-server/tenant1",
        "https://auth.example.com/.well-known/openid-configuration/tenant1",
        "https://auth.example.com/tenant1/.well-known/openid-configuration",
    ]


def test_as_metadata_order_for_issuer_without_path() -> None:
    assert auth_server_metadata_urls(ISSUER) == [
        "https://auth.example.com/.well-known/oauth-authorization-server",
        "https://auth.example.com/.well-known/openid-configuration",
    ]


def test_as_metadata_probing_falls_through_to_oidc_appended() -> None:
    issuer = "https://auth.example.com/tenant1"
    step = find_auth_server_metadata(issuer, POLICY)
    urls = [next(step).url, step.send(NOT_FOUND).url, step.send(NOT_FOUND).url]
    assert urls == auth_server_metadata_urls(issuer)
    metadata = finish(step, HttpResponse.of_json(as_doc(issuer)))
    assert metadata.token_endpoint == f"{issuer}/token"


def test_as_metadata_with_other_issuer_is_refused() -> None:
    step = find_auth_server_metadata(ISSUER, POLICY)
    next(step)
    step.send(HttpResponse.of_json(as_doc("https://evil.example.com")))
    with pytest.raises(AuthResponseInvalid, match="names issuer"):
        step.send(NOT_FOUND)


def test_as_metadata_issuer_compare_is_exact_no_trailing_slash_leniency() -> None:
    step = find_auth_server_metadata(ISSUER, POLICY)
    next(step)
    step.send(HttpResponse.of_json(as_doc(ISSUER + "/")))
    with pytest.raises(AuthResponseInvalid, match="names issuer"):
        step.send(NOT_FOUND)


def test_as_metadata_mismatch_then_valid_oidc_document_is_used() -> None:
    step = find_auth_server_metadata(ISSUER, POLICY)
    next(step)
    step.send(HttpResponse.of_json(as_doc("https://evil.example.com")))
    metadata = finish(step, HttpResponse.of_json(as_doc()))
    assert metadata.issuer == ISSUER


def test_as_metadata_missing_everywhere_is_a_discovery_failure() -> None:
    step = find_auth_server_metadata(ISSUER, POLICY)
    next(step)
    step.send(NOT_FOUND)
    with pytest.raises(DiscoveryFailed, match="No authorization server metadata"):
        step.send(NOT_FOUND)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("authorization_endpoint", "javascript:alert(1)", "authorization_endpoint"),
        ("token_endpoint", "http://auth.example.com/token", "plain http"),
        ("token_endpoint", None, "token_endpoint"),
        ("token_endpoint", 7, "token_endpoint"),
        ("registration_endpoint", "https://10.0.0.1/register", "SSRF"),
        ("revocation_endpoint", "https://auth.example.com/revoke#x", "fragment"),
        ("code_challenge_methods_supported", "S256", "list of strings"),
        ("authorization_response_iss_parameter_supported", "yes", "true or false"),
        ("response_types_supported", ["token"], "authorization code flow"),
        ("scopes_supported", ["x" * 5000], "list of strings"),
    ],
)
def test_hostile_as_metadata_is_refused_naming_the_field(
    field: str, value: object, message: str
) -> None:
    doc = as_doc()
    doc[field] = value
    if value is None:
        del doc[field]
    with pytest.raises(AuthResponseInvalid, match=message):
        AuthServerMetadata.from_json(doc, issuer=ISSUER, policy=POLICY, source="test")


def test_as_metadata_not_an_object_is_refused() -> None:
    with pytest.raises(AuthResponseInvalid, match="not a JSON object"):
        AuthServerMetadata.from_json([], issuer=ISSUER, policy=POLICY, source="test")


def test_as_metadata_fields_are_parsed() -> None:
    doc = as_doc(
        scopes_supported=["mcp", "offline_access"],
        revocation_endpoint=f"{ISSUER}/revoke",
        device_authorization_endpoint=f"{ISSUER}/device",
        authorization_response_iss_parameter_supported=True,
        client_id_metadata_document_supported=True,
        token_endpoint_auth_methods_supported=["none", "client_secret_post"],
    )
    metadata = AuthServerMetadata.from_json(doc, issuer=ISSUER, policy=POLICY, source="test")
    assert metadata.scopes_supported == ("mcp", "offline_access")
    assert metadata.revocation_endpoint == f"{ISSUER}/revoke"
    assert metadata.device_authorization_endpoint == f"{ISSUER}/device"
    assert metadata.authorization_response_iss_parameter_supported
    assert metadata.client_id_metadata_document_supported
    assert metadata.token_endpoint_auth_methods_supported == ("none", "client_secret_post")


def test_as_metadata_default_auth_method_is_client_secret_basic() -> None:
    metadata = AuthServerMetadata.from_json(as_doc(), issuer=ISSUER, policy=POLICY, source="t")
    assert metadata.token_endpoint_auth_methods_supported == ("client_secret_basic",)


def test_as_metadata_round_trips_through_the_vault() -> None:
    metadata = AuthServerMetadata.from_json(
        as_doc(revocation_endpoint=f"{ISSUER}/revoke"), issuer=ISSUER, policy=POLICY, source="t"
    )
    assert AuthServerMetadata.from_vault(metadata.to_json(), policy=POLICY) == metadata
    guessed = AuthServerMetadata.guessed_for("https://mcp.example.com")
    assert AuthServerMetadata.from_vault(guessed.to_json(), policy=POLICY) == guessed


# --- 2025-03-26 fallback --------------------------------------------------------------


def test_legacy_metadata_is_read_at_the_server_origin_with_protocol_version() -> None:
    step = find_legacy_auth_server(MCP, POLICY)
    request = next(step)
    assert request.url == "https://mcp.example.com/.well-known/oauth-authorization-server"
    assert request.header("MCP-Protocol-Version") == "2025-03-26"
    metadata = finish(step, HttpResponse.of_json(as_doc("https://mcp.example.com/")))
    assert metadata.issuer == "https://mcp.example.com/"  # recorded as spelled, for `iss`


def test_legacy_without_metadata_uses_default_endpoints() -> None:
    step = find_legacy_auth_server(MCP, POLICY)
    next(step)
    metadata = finish(step, NOT_FOUND)
    assert metadata.is_guessed
    assert metadata.authorization_endpoint == "https://mcp.example.com/authorize"
    assert metadata.token_endpoint == "https://mcp.example.com/token"
    assert metadata.registration_endpoint == "https://mcp.example.com/register"


def test_legacy_metadata_for_another_issuer_is_refused() -> None:
    step = find_legacy_auth_server(MCP, POLICY)
    next(step)
    with pytest.raises(AuthResponseInvalid, match="names issuer"):
        step.send(HttpResponse.of_json(as_doc("https://elsewhere.example.com")))


# --- the whole of discovery -----------------------------------------------------------


def test_discover_with_prm_returns_a_context_for_the_listed_issuer() -> None:
    challenge = BearerChallenge(scope=("files:read",))
    step = discover(MCP, challenge, POLICY)
    next(step)
    as_request = step.send(HttpResponse.of_json(prm_doc(scopes_supported=["files:read"])))
    assert as_request.url == "https://auth.example.com/.well-known/oauth-authorization-server"
    context = finish(step, HttpResponse.of_json(as_doc()))
    assert isinstance(context, AuthorizationContext)
    assert (context.resource, context.issuer) == (MCP, ISSUER)
    assert context.challenged_scopes == ("files:read",)
    assert not context.is_legacy


def test_discover_uses_the_preferred_issuer_when_listed() -> None:
    other = "https://other-auth.example.com"
    step = discover(MCP, None, POLICY, preferred_issuer=other)
    next(step)
    doc = prm_doc()
    doc["authorization_servers"] = [ISSUER, other]
    assert step.send(HttpResponse.of_json(doc)).url.startswith(other)


def test_discover_without_prm_takes_the_legacy_path() -> None:
    step = discover(MCP, None, POLICY)
    next(step)
    step.send(NOT_FOUND)
    legacy = step.send(NOT_FOUND)
    assert legacy.url == "https://mcp.example.com/.well-known/oauth-authorization-server"
    context = finish(step, NOT_FOUND)
    assert context.is_legacy
    assert context.resource == MCP
    assert context.issuer == "https://mcp.example.com"


def test_context_round_trips_through_the_vault() -> None:
    step = discover(MCP, BearerChallenge(scope=("a",)), POLICY)
    next(step)
    step.send(HttpResponse.of_json(prm_doc(scopes_supported=["a", "b"])))
    context = finish(step, HttpResponse.of_json(as_doc()))
    assert AuthorizationContext.from_vault(context.to_json(), mcp_url=MCP, policy=POLICY) == context
    legacy = AuthorizationContext(
        MCP,
        "https://mcp.example.com",
        AuthServerMetadata.guessed_for("https://mcp.example.com"),
        None,
    )
    assert AuthorizationContext.from_vault(legacy.to_json(), mcp_url=MCP, policy=POLICY) == legacy


def test_stored_context_of_another_server_is_refused() -> None:
    legacy = AuthorizationContext(
        MCP,
        "https://mcp.example.com",
        AuthServerMetadata.guessed_for("https://mcp.example.com"),
        None,
    )
    other = "https://mcp.example.com/other"
    with pytest.raises(AuthResponseInvalid, match="does not belong"):
        AuthorizationContext.from_vault(legacy.to_json(), mcp_url=other, policy=POLICY)
    with pytest.raises(AuthResponseInvalid, match="damaged"):
        AuthorizationContext.from_vault(None, mcp_url=MCP, policy=POLICY)
