"""The lines a daemon says to a terminal that joined its login (daemon/login_join.py),
without sockets: each round-trips, and any other line is a HelloError, never a crash."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.cli.joined_login import joined_sign_in_text
from mcp_bridge.daemon import hello
from mcp_bridge.daemon.login_join import (
    LoggedIn,
    SignInShown,
    logged_in_line,
    parse_join_line,
    sign_in_line,
)

URL = "https://as.example/authorize?state=s"


@pytest.mark.parametrize(
    "shown", [SignInShown(URL, None, True), SignInShown(URL, "WDJB-MJHT", False)]
)
def test_the_sign_in_line_round_trips(shown: SignInShown) -> None:
    assert parse_join_line(sign_in_line(shown)) == shown


def test_the_logged_in_line_round_trips() -> None:
    done = LoggedIn("https://as.example", ("read", "write"), refresh_token=True)
    assert parse_join_line(logged_in_line(done)) == done


def test_the_daemons_failure_keeps_its_words() -> None:
    with pytest.raises(hello.HelloError, match=r"access_denied\. Run it again"):
        parse_join_line(hello.error_reply("access_denied", "Run it again"))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"sign_in": {"url": 7, "code": None, "tab": True}},
        {"sign_in": {"url": URL, "code": None}},
        {"logged_in": {"issuer": "i", "scopes": "read", "refresh_token": True}},
        {"logged_in": {"issuer": "i", "scopes": [1], "refresh_token": True}},
    ],
)
def test_a_line_of_no_known_shape_is_refused(fields: dict[str, object]) -> None:
    with pytest.raises(hello.HelloError, match="not understood"):
        parse_join_line(hello.ok_reply(**fields))


SCALAR = st.none() | st.booleans() | st.integers() | st.text(max_size=12)
JSON = SCALAR | st.lists(SCALAR, max_size=3)
FIELDS = st.dictionaries(
    st.sampled_from(["url", "code", "tab", "issuer", "scopes", "refresh_token"]), JSON
)


@given(st.dictionaries(st.sampled_from(["ok", "sign_in", "logged_in"]), FIELDS | JSON))
def test_any_line_parses_or_is_refused(fields: dict[str, object]) -> None:
    line = json.dumps({"mcp-bridge": hello.PROTOCOL_VERSION, **fields}).encode()
    try:
        step = parse_join_line(line)
    except hello.HelloError:
        return
    assert isinstance(step, SignInShown | LoggedIn)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_are_refused(line: bytes) -> None:
    with contextlib.suppress(hello.HelloError):
        parse_join_line(line)


def test_the_terminal_prints_the_url_and_the_code_on_lines_of_their_own() -> None:
    text = joined_sign_in_text("https://mcp.example/mcp", SignInShown(URL, "WDJB-MJHT", True))
    assert text.splitlines()[1:] == [URL, "and enter the code WDJB-MJHT"]
    assert "browser window it opened" in text
    plain = joined_sign_in_text("https://mcp.example/mcp", SignInShown(URL, None, False))
    assert plain.splitlines()[1:] == [URL]
    assert "window" not in plain
