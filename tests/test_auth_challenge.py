"""WWW-Authenticate parsing (RFC 9110 §11.6.1, RFC 6750 §3)."""

from __future__ import annotations

from mcp_bridge.auth.challenge import BearerChallenge, Challenge, parse_www_authenticate


def test_bearer_challenge_with_resource_metadata_and_scope() -> None:
    header = (
        'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource",'
        ' scope="files:read files:write"'
    )
    challenge = BearerChallenge.from_header(header)
    assert challenge == BearerChallenge(
        scope=("files:read", "files:write"),
        resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource",
    )


def test_quoted_string_escapes_are_decoded() -> None:
    challenge = BearerChallenge.from_header(r'Bearer error_description="say \"hi\", \\ ok"')
    assert challenge is not None
    assert challenge.error_description == 'say "hi", \\ ok'


def test_scheme_and_parameter_names_are_case_insensitive() -> None:
    challenge = BearerChallenge.from_header('BEARER Error="insufficient_scope", SCOPE="a"')
    assert challenge is not None
    assert challenge.is_insufficient_scope
    assert challenge.scope == ("a",)


def test_several_challenges_in_one_header_pick_bearer() -> None:
    header = 'Basic realm="x", DPoP algs="ES256 PS256", Bearer realm="mcp", error="invalid_token"'
    challenges = parse_www_authenticate(header)
    assert [c.scheme for c in challenges] == ["basic", "dpop", "bearer"]
    assert challenges[1].params == {"algs": "ES256 PS256"}
    bearer = BearerChallenge.from_header(header)
    assert bearer is not None
    assert bearer.error == "invalid_token"
    assert bearer.realm == "mcp"


def test_token68_challenge_is_not_mistaken_for_a_parameter() -> None:
    challenges = parse_www_authenticate("Negotiate YIIB+w==, Bearer")
    assert challenges == [Challenge("negotiate", token68="YIIB+w=="), Challenge("bearer")]


def test_bare_bearer_has_no_parameters() -> None:
    assert BearerChallenge.from_header("Bearer") == BearerChallenge()


def test_whitespace_around_equals_is_tolerated() -> None:
    challenge = BearerChallenge.from_header('Bearer  realm = "x" ,  scope=a')
    assert challenge == BearerChallenge(realm="x", scope=("a",))


def test_unquoted_url_value_is_read_whole() -> None:
    challenge = BearerChallenge.from_header(
        "Bearer resource_metadata=https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    )
    assert challenge is not None
    assert challenge.resource_metadata == (
        "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"
    )


def test_unterminated_quote_drops_only_the_broken_parameter() -> None:
    challenge = BearerChallenge.from_header('Bearer error="invalid_token", scope="a b')
    assert challenge == BearerChallenge(error="invalid_token")


def test_duplicate_parameter_keeps_the_first() -> None:
    challenge = BearerChallenge.from_header(
        'Bearer resource_metadata="https://a.example/prm", resource_metadata="https://evil/prm"'
    )
    assert challenge is not None
    assert challenge.resource_metadata == "https://a.example/prm"


def test_no_bearer_challenge_gives_none() -> None:
    assert BearerChallenge.from_header('Basic realm="x"') is None
    assert BearerChallenge.from_header("") is None
    assert BearerChallenge.from_header(None) is None


def test_garbage_never_raises() -> None:
    for header in ["=", ",,,", '"', "Bearer =x", 'Bearer a="\\', "\x00\x01", "Bearer ,=,"]:
        parse_www_authenticate(header)  # tolerant by contract
