"""The verdict on a token refused right after the login that got it (refused_login.py): when
it is given, what it says, and that it stands until a login or new settings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.refused_login import FRESH_LOGIN_S, FreshLoginWatch
from mcp_bridge.auth.token_set import TokenSet

MCP = "https://api.example.com/mcp"
LOGIN = TokenSet("access-1", "https://as.example", MCP, refresh_token="r")
WITH_ID = replace(LOGIN, id_token="header.payload.sig")
INVALID_TOKEN = BearerChallenge(error="invalid_token", error_description="bad audience\x1b[2J")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def watching(tokens: TokenSet, clock: Clock | None = None) -> FreshLoginWatch:
    watch = FreshLoginWatch(MCP, clock=clock or Clock())
    watch.logged_in(tokens)
    return watch


def test_an_id_token_in_the_response_points_at_use_id_token() -> None:
    verdict = watching(WITH_ID).judge(WITH_ID, INVALID_TOKEN)
    assert verdict is not None
    assert "ID token" in verdict.what
    assert "--use-id-token" in verdict.next_step
    assert "bad audience" in verdict.what  # the server's words, sanitized
    assert "\x1b" not in verdict.what


def test_no_id_token_points_at_the_audience_parameter() -> None:
    verdict = watching(LOGIN).judge(LOGIN, None)  # a 401 with no challenge at all counts
    assert verdict is not None
    assert "--authorize-param audience=" in verdict.next_step
    assert "Auth0" in verdict.what


def test_a_refused_id_token_points_back_at_the_access_token() -> None:
    sent = replace(WITH_ID, sends_id_token=True)
    verdict = watching(sent).judge(sent, INVALID_TOKEN)
    assert verdict is not None
    assert "without --use-id-token" in verdict.next_step


@pytest.mark.parametrize(
    ("refused", "challenge", "later_s"),
    [
        pytest.param(replace(LOGIN, access_token="refreshed"), None, 0.0, id="other tokens"),
        pytest.param(None, None, 0.0, id="no tokens sent"),
        pytest.param(LOGIN, BearerChallenge(error="invalid_request"), 0.0, id="not the token"),
        pytest.param(LOGIN, None, FRESH_LOGIN_S + 1, id="not fresh"),
    ],
)
def test_no_verdict_where_a_refresh_or_a_login_may_still_help(
    refused: TokenSet | None, challenge: BearerChallenge | None, later_s: float
) -> None:
    clock = Clock()
    watch = watching(LOGIN, clock)
    clock.now += later_s
    assert watch.judge(refused, challenge) is None
    assert watch.verdict is None


def test_no_verdict_before_any_login() -> None:
    assert FreshLoginWatch(MCP).judge(LOGIN, None) is None


def test_the_verdict_stands_until_a_login_or_new_settings() -> None:
    clock = Clock()
    watch = watching(LOGIN, clock)
    verdict = watch.judge(LOGIN, INVALID_TOKEN)
    assert verdict is not None
    clock.now += 10 * FRESH_LOGIN_S
    assert watch.judge(replace(LOGIN, access_token="refreshed"), None) is verdict
    watch.forget()
    assert watch.verdict is None
    watch.judge(LOGIN, None)
    watch.logged_in(replace(LOGIN, access_token="access-2"))
    assert watch.verdict is None
