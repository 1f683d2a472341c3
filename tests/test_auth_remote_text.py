"""Text an authorization server writes (error codes, error_description, odd field values)
reaches users only through `sanitize_remote_text`: one line of printable ASCII, capped
(issue 8). A terminal escape or a thousand lines from a hostile server must not reach a
terminal or a host's UI as they were sent."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.auth.dynamic_registration import ClientMetadata
from mcp_bridge.auth.errors import (
    REMOTE_TEXT_MAX_CHARS,
    AuthError,
    RegistrationFailed,
    UrlRefused,
    sanitize_remote_text,
)
from mcp_bridge.auth.http_step import HttpResponse
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.registration import obtain_client
from mcp_bridge.auth.token_endpoint import raise_token_endpoint_error
from mcp_bridge.auth.urlpolicy import UrlPolicy
from tests.fixtures.http_steps import finish

# C0, DEL and C1: what a terminal acts on rather than prints.
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
HOSTILE = "\x1b]8;;https://evil.example\x07click here\x1b]8;;\x07\r\n\x9b31mred\u202egnp.exe"
ISSUER = "https://auth.example.com"


def test_control_characters_become_spaces_and_other_non_ascii_a_question_mark() -> None:
    assert sanitize_remote_text("line one\nline two\ttab\x85") == "line one line two tab "
    assert sanitize_remote_text("accès refusé \u202eexe") == "acc?s refus? ?exe"


def test_long_text_is_cut_with_an_ellipsis_at_the_cap() -> None:
    cleaned = sanitize_remote_text("x" * 10_000)
    assert len(cleaned) == REMOTE_TEXT_MAX_CHARS
    assert cleaned.endswith("...")
    assert sanitize_remote_text("abcdef", max_chars=2) == "ab"  # too short for an ellipsis


def test_what_is_not_text_is_dropped() -> None:
    assert sanitize_remote_text(None) == ""
    assert sanitize_remote_text(["a"]) == ""
    assert sanitize_remote_text(42) == ""


@given(st.text(), st.integers(min_value=1, max_value=400))
def test_the_result_is_printable_ascii_within_the_cap(text: str, max_chars: int) -> None:
    cleaned = sanitize_remote_text(text, max_chars=max_chars)
    assert all(" " <= ch <= "~" for ch in cleaned)
    assert len(cleaned) <= max_chars
    if len(text) <= max_chars:
        assert len(cleaned) == len(text)  # character for character: nothing is lost silently


@pytest.mark.parametrize("status", [400, 401, 503])
def test_token_endpoint_errors_carry_the_description_sanitized(status: int) -> None:
    response = HttpResponse.of_json(
        {"error": "invalid_request\n" + "\x1b" * 500, "error_description": HOSTILE * 100},
        status=status,
    )
    with pytest.raises(AuthError) as refused:
        raise_token_endpoint_error(response, f"{ISSUER}/token", "token endpoint")
    message = str(refused.value)
    assert not CONTROL.search(message)
    assert "\u202e" not in message
    assert "click here" in message
    assert len(message) < 2 * REMOTE_TEXT_MAX_CHARS + 200


def _register(reply: HttpResponse) -> None:
    metadata = AuthServerMetadata(
        issuer=ISSUER,
        authorization_endpoint=f"{ISSUER}/authorize",
        token_endpoint=f"{ISSUER}/token",
        registration_endpoint=f"{ISSUER}/register",
    )
    step = obtain_client(metadata, ClientMetadata(("http://127.0.0.1:1/cb",)), now=0.0)
    next(step)
    finish(step, reply)


@pytest.mark.parametrize(
    "reply",
    [
        HttpResponse.of_json({"error": HOSTILE, "error_description": HOSTILE * 100}, 400),
        HttpResponse.of_json({"client_id": "c", "token_endpoint_auth_method": HOSTILE * 100}),
    ],
    ids=["refused", "unusable-auth-method"],
)
def test_registration_errors_carry_server_text_sanitized(reply: HttpResponse) -> None:
    with pytest.raises(RegistrationFailed) as refused:
        _register(reply)
    message = str(refused.value)
    assert not CONTROL.search(message)
    assert "\u202e" not in message
    assert len(message) < 2 * REMOTE_TEXT_MAX_CHARS + 300
    json.dumps(message)  # and it is plain text a JSON-RPC error can carry


@pytest.mark.parametrize(
    "issuer",
    [
        "https://auth.example.com/\x9b31m",  # C1 CSI: an escape to 8-bit terminals
        "https://auth.example.com/\u202egnp.exe",  # right-to-left override
        "https://auth.example.com/\u2028x",  # line separator
        "https://auth.example.com/\u00a0x",  # no-break space
    ],
)
def test_urls_a_server_names_may_not_smuggle_invisible_or_control_characters(
    issuer: str,
) -> None:
    # Such a URL would reach messages as it is ("The authorization server ISSUER offers no
    # device login"); a real one percent-encodes these characters.
    policy = UrlPolicy.for_server("https://mcp.example.com/mcp")
    with pytest.raises(UrlRefused, match="control") as refused:
        policy.check_fetch(issuer, role="authorization server")
    assert not CONTROL.search(str(refused.value))
