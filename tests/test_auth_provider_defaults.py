"""Provider defaults on the authorization request (authorize.PROVIDER_DEFAULT_PARAMS): Google
issues a refresh token only with access_type=offline and prompt=consent, so a login at its
issuer asks for both unless the user set them (docs/oauth-in-the-wild.md §6)."""

from __future__ import annotations

from dataclasses import replace
from urllib.parse import parse_qs, urlsplit

import pytest

from mcp_bridge.auth.authorize import build_authorization_request
from mcp_bridge.auth.discovery import AuthorizationContext
from mcp_bridge.auth.urlpolicy import UrlPolicy
from tests.fixtures.example_login import AS, MCP, PUBLIC, REDIRECT

GOOGLE = "https://accounts.google.com"
GOOGLE_AS = replace(
    AS,
    issuer=GOOGLE,
    authorization_endpoint=f"{GOOGLE}/o/oauth2/v2/auth",
    token_endpoint="https://oauth2.googleapis.com/token",
)
POLICY = UrlPolicy.for_server(MCP)


def query_of(
    context: AuthorizationContext, extra: dict[str, str] | None = None
) -> dict[str, list[str]]:
    client = replace(PUBLIC, issuer=context.issuer)
    request = build_authorization_request(
        context,
        client,
        redirect_uri=REDIRECT,
        scopes=("openid",),
        policy=POLICY,
        extra_params=extra,
    )
    return parse_qs(urlsplit(request.url).query)


def test_a_login_at_google_asks_for_offline_access_and_consent() -> None:
    query = query_of(AuthorizationContext(MCP, GOOGLE, GOOGLE_AS, None))
    assert query["access_type"] == ["offline"]
    assert query["prompt"] == ["consent"]


@pytest.mark.parametrize(
    ("extra", "access_type", "prompt"),
    [
        ({"prompt": "select_account"}, "offline", "select_account"),
        ({"access_type": "online"}, "online", "consent"),
        ({"prompt": "none", "access_type": "online"}, "online", "none"),
    ],
)
def test_the_users_own_parameters_win(extra: dict[str, str], access_type: str, prompt: str) -> None:
    query = query_of(AuthorizationContext(MCP, GOOGLE, GOOGLE_AS, None), extra)
    assert (query["access_type"], query["prompt"]) == ([access_type], [prompt])  # once each


@pytest.mark.parametrize(
    "issuer", ["https://auth.example.com", "https://accounts.google.com.evil.example"]
)
def test_other_issuers_get_no_such_parameters(issuer: str) -> None:
    metadata = replace(AS, issuer=issuer, authorization_endpoint=f"{issuer}/authorize")
    query = query_of(AuthorizationContext(MCP, issuer, metadata, None))
    assert "access_type" not in query
    assert "prompt" not in query
