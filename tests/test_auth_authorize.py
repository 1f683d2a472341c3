"""The authorization request and its callback (MCP 2026-07-28 Authorization), PKCE and scope
choice."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlsplit

import pytest

from mcp_bridge.auth.authorize import (
    PendingAuthorization,
    build_authorization_request,
    parse_callback_query,
    validate_callback,
)
from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.discovery import AuthorizationContext
from mcp_bridge.auth.errors import AuthError, AuthorizationDenied, CallbackRejected, UrlRefused
from mcp_bridge.auth.metadata import AuthServerMetadata, ProtectedResourceMetadata
from mcp_bridge.auth.pkce import PkcePair, require_s256, s256_challenge
from mcp_bridge.auth.scopes import (
    initial_scopes,
    login_scopes,
    step_up_scopes,
    with_offline_access,
)
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.errors import ConfigError

MCP = "https://mcp.example.com/mcp"
ISSUER = "https://auth.example.com"
REDIRECT = "http://127.0.0.1:33418/callback"
POLICY = UrlPolicy.for_server(MCP)
CLIENT = ClientRegistration(ISSUER, "client-1", RegistrationMethod.DCR, "none", (REDIRECT,))


def metadata(**overrides: object) -> AuthServerMetadata:
    fields: dict[str, object] = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "code_challenge_methods_supported": ("S256",),
    }
    fields.update(overrides)
    return AuthServerMetadata(**fields)  # type: ignore[arg-type]


def context(**overrides: object) -> AuthorizationContext:
    return AuthorizationContext(
        resource=MCP, issuer=ISSUER, auth_server=metadata(**overrides), resource_metadata=None
    )


def query_of(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


# --- PKCE (S256; refuse when unsupported) ---------------------------------------------


def test_s256_challenge_matches_rfc7636_appendix_b() -> None:
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_pkce_verifier_has_rfc7636_length_and_hides_from_repr() -> None:
    pair = PkcePair.generate()
    assert 43 <= len(pair.verifier) <= 128
    digest = hashlib.sha256(pair.verifier.encode()).digest()
    assert pair.challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert pair.verifier not in repr(pair)


def test_no_s256_refuses_to_start() -> None:
    with pytest.raises(AuthError, match="does not advertise PKCE"):
        require_s256(metadata(code_challenge_methods_supported=()))


def test_plain_only_pkce_refuses_to_start() -> None:
    with pytest.raises(AuthError, match="not S256"):
        build_authorization_request(
            context(code_challenge_methods_supported=("plain",)),
            CLIENT,
            redirect_uri=REDIRECT,
            scopes=(),
            policy=POLICY,
        )


# --- scopes (selection, step-up, offline_access) --------------------------------------


PRM = ProtectedResourceMetadata(MCP, (ISSUER,), scopes_supported=("files:read", "files:write"))


def test_challenge_scope_is_used_exactly() -> None:
    assert initial_scopes(("admin",), PRM) == ("admin",)


def test_prm_scopes_are_used_without_a_challenge_scope() -> None:
    assert initial_scopes((), PRM) == ("files:read", "files:write")


def test_no_scope_anywhere_omits_scope() -> None:
    assert initial_scopes((), None) == ()
    request = build_authorization_request(
        context(), CLIENT, redirect_uri=REDIRECT, scopes=(), policy=POLICY
    )
    assert "scope" not in query_of(request.url)


def test_offline_access_added_only_when_the_as_lists_it() -> None:
    listing = metadata(scopes_supported=("files:read", "offline_access"))
    assert with_offline_access(("files:read",), listing) == ("files:read", "offline_access")
    assert with_offline_access(("files:read",), metadata()) == ("files:read",)
    assert with_offline_access((), listing) == ()


def test_step_up_asks_for_the_union_of_old_and_challenged_scopes() -> None:
    assert step_up_scopes(("a", "b"), ("b", "c")) == ("a", "b", "c")


def test_login_scopes_apply_selection_then_offline_access() -> None:
    listing = metadata(scopes_supported=("offline_access",))
    first = AuthorizationContext(MCP, ISSUER, listing, PRM)
    assert login_scopes(first) == ("files:read", "files:write", "offline_access")
    step_up = AuthorizationContext(MCP, ISSUER, listing, PRM, challenged_scopes=("admin",))
    assert login_scopes(step_up, previous=("files:read", "offline_access")) == (
        "files:read",
        "offline_access",
        "admin",
    )


# --- the authorization URL (resource, issuer, URL checks) -----------------------------


def test_authorization_url_carries_every_required_parameter() -> None:
    pkce = PkcePair.generate()
    request = build_authorization_request(
        context(),
        CLIENT,
        redirect_uri=REDIRECT,
        scopes=("files:read", "offline_access"),
        policy=POLICY,
        pkce=pkce,
    )
    assert request.url.startswith(f"{ISSUER}/authorize?")
    query = query_of(request.url)
    assert query == {
        "response_type": ["code"],
        "client_id": ["client-1"],
        "redirect_uri": [REDIRECT],
        "state": [request.pending.state],
        "code_challenge": [pkce.challenge],
        "code_challenge_method": ["S256"],
        "resource": [MCP],
        "scope": ["files:read offline_access"],
    }
    assert request.pending.code_verifier == pkce.verifier
    assert request.pending.issuer == ISSUER  # recorded before redirecting


def test_state_is_fresh_and_unguessable_per_request() -> None:
    states = {
        build_authorization_request(
            context(), CLIENT, redirect_uri=REDIRECT, scopes=(), policy=POLICY
        ).pending.state
        for _ in range(20)
    }
    assert len(states) == 20
    assert all(len(state) >= 40 for state in states)


def test_pending_authorization_repr_hides_secrets() -> None:
    request = build_authorization_request(
        context(), CLIENT, redirect_uri=REDIRECT, scopes=(), policy=POLICY
    )
    text = repr(request.pending)
    assert request.pending.state not in text
    assert request.pending.code_verifier not in text


def test_endpoint_query_is_kept_and_extra_params_appended() -> None:
    request = build_authorization_request(
        context(authorization_endpoint=f"{ISSUER}/authorize?tenant=t1"),
        CLIENT,
        redirect_uri=REDIRECT,
        scopes=(),
        policy=POLICY,
        extra_params={"prompt": "consent", "audience": "x"},
    )
    query = query_of(request.url)
    assert query["tenant"] == ["t1"]
    assert query["prompt"] == ["consent"]
    assert query["audience"] == ["x"]


@pytest.mark.parametrize(
    "key", ["state", "code_challenge", "resource", "client_id", "redirect_uri", "dpop_jkt"]
)
def test_extra_params_may_not_override_protocol_params(key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        build_authorization_request(
            context(),
            CLIENT,
            redirect_uri=REDIRECT,
            scopes=(),
            policy=POLICY,
            extra_params={key: "x"},
        )


def test_authorization_url_over_plain_http_is_not_opened() -> None:
    with pytest.raises(UrlRefused):
        build_authorization_request(
            context(authorization_endpoint="http://auth.example.com/authorize"),
            CLIENT,
            redirect_uri=REDIRECT,
            scopes=(),
            policy=POLICY,
        )


# --- the callback (state; RFC 9207 iss) -----------------------------------------------


def pending(*, iss_required: bool = False) -> PendingAuthorization:
    return PendingAuthorization(
        state="s" * 43,
        code_verifier="v" * 43,
        issuer=ISSUER,
        iss_required=iss_required,
        client_id="client-1",
        redirect_uri=REDIRECT,
        resource=MCP,
        scopes=(),
    )


def test_callback_with_matching_state_yields_the_code() -> None:
    assert validate_callback(pending(), {"state": "s" * 43, "code": "the-code"}) == "the-code"


def test_callback_without_state_is_rejected() -> None:
    with pytest.raises(CallbackRejected, match="none at all"):
        validate_callback(pending(), {"code": "c"})


def test_callback_with_other_state_is_rejected() -> None:
    with pytest.raises(CallbackRejected, match="state"):
        validate_callback(pending(), {"state": "t" * 43, "code": "c"})


def test_iss_advertised_and_present_and_equal_is_accepted() -> None:
    query = {"state": "s" * 43, "code": "c", "iss": ISSUER}
    assert validate_callback(pending(iss_required=True), query) == "c"


def test_iss_advertised_and_present_but_different_is_rejected() -> None:
    query = {"state": "s" * 43, "code": "c", "iss": "https://evil.example.com"}
    with pytest.raises(CallbackRejected, match="mix-up"):
        validate_callback(pending(iss_required=True), query)


def test_iss_absent_but_advertised_is_rejected() -> None:
    with pytest.raises(CallbackRejected, match="no `iss`"):
        validate_callback(pending(iss_required=True), {"state": "s" * 43, "code": "c"})


def test_iss_not_advertised_but_present_and_different_is_rejected() -> None:
    query = {"state": "s" * 43, "code": "c", "iss": "https://evil.example.com"}
    with pytest.raises(CallbackRejected):
        validate_callback(pending(), query)


def test_iss_not_advertised_and_absent_proceeds() -> None:
    assert validate_callback(pending(), {"state": "s" * 43, "code": "c"}) == "c"


@pytest.mark.parametrize(
    "iss",
    [
        ISSUER + "/",
        ISSUER.upper(),
        "https://auth.example.com:443",
        "https%3A%2F%2Fauth.example.com",
    ],
)
def test_iss_compare_applies_no_normalisation(iss: str) -> None:
    with pytest.raises(CallbackRejected):
        validate_callback(pending(), {"state": "s" * 43, "code": "c", "iss": iss})


def test_iss_mismatch_ignores_error_fields() -> None:
    query = {
        "state": "s" * 43,
        "iss": "https://evil.example.com",
        "error": "access_denied",
        "error_description": "Call +1-555 to unlock your account",
    }
    with pytest.raises(CallbackRejected) as raised:
        validate_callback(pending(), query)
    assert "555" not in str(raised.value)
    assert "access_denied" not in str(raised.value)


def test_error_callback_reports_the_sanitized_as_error() -> None:
    query = {
        "state": "s" * 43,
        "iss": ISSUER,
        "error": "access_denied",
        "error_description": "User said no\r\n<script>" + "x" * 1000,
    }
    with pytest.raises(AuthorizationDenied, match="access_denied") as raised:
        validate_callback(pending(), query)
    message = str(raised.value)
    assert "\n" not in message
    assert len(message) < 400
    assert raised.value.error == "access_denied"


def test_callback_with_neither_code_nor_error_is_rejected() -> None:
    with pytest.raises(CallbackRejected, match="neither"):
        validate_callback(pending(), {"state": "s" * 43})


def test_repeated_callback_parameter_is_rejected() -> None:
    with pytest.raises(CallbackRejected, match="repeats"):
        parse_callback_query("code=a&state=s&code=b")
    assert parse_callback_query("code=a%2Fb&state=s") == {"code": "a/b", "state": "s"}


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://example.com/callback", "http://192.168.1.2:80/cb", "myapp:/cb", "https://x/cb#frag"],
)
def test_redirect_uri_must_be_loopback_or_https(redirect_uri: str) -> None:
    with pytest.raises(ConfigError, match="redirect URI"):
        build_authorization_request(
            context(), CLIENT, redirect_uri=redirect_uri, scopes=(), policy=POLICY
        )


def test_localhost_and_ipv6_loopback_redirect_uris_are_accepted() -> None:
    for redirect_uri in ["http://localhost:4000/callback", "http://[::1]:4000/callback"]:
        build_authorization_request(
            context(), CLIENT, redirect_uri=redirect_uri, scopes=(), policy=POLICY
        )


def test_a_dpop_login_names_its_key_so_the_code_is_bound_to_it_too() -> None:
    """RFC 9449 §10: `dpop_jkt` binds the authorization code to the DPoP key, so a code
    caught on its way back is worthless without the key. (Reserved against
    --authorize-param: test_extra_params_may_not_override_protocol_params.)"""
    jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    request = build_authorization_request(
        context(), CLIENT, redirect_uri=REDIRECT, scopes=(), policy=POLICY, dpop_jkt=jkt
    )
    assert query_of(request.url)["dpop_jkt"] == [jkt]
    plain = build_authorization_request(
        context(), CLIENT, redirect_uri=REDIRECT, scopes=(), policy=POLICY
    )
    assert "dpop_jkt" not in query_of(plain.url)
