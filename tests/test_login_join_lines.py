"""The lines a daemon and a terminal that joined its login say to each other
(daemon/login_join.py), without sockets: each round-trips, and any other line is a
HelloError, never a crash; a pasted address is judged by the login and never echoed."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.auth.errors import AuthError, CallbackRejected
from mcp_bridge.auth.url_showing import PASTE_OFFER
from mcp_bridge.cli.joined_login import joined_sign_in_text
from mcp_bridge.daemon import hello
from mcp_bridge.daemon.login_join import (
    LoggedIn,
    PasteRefused,
    SignInShown,
    judge_pasted_line,
    logged_in_line,
    parse_join_line,
    parse_pasted_line,
    paste_refused_line,
    pasted_line,
    sign_in_line,
)

URL = "https://as.example/authorize?state=s"


@pytest.mark.parametrize(
    "shown",
    [
        SignInShown(URL, None, True),
        SignInShown(URL, "WDJB-MJHT", False),
        SignInShown(URL, None, False, paste=True),
    ],
)
def test_the_sign_in_line_round_trips(shown: SignInShown) -> None:
    assert parse_join_line(sign_in_line(shown)) == shown


def test_the_logged_in_line_round_trips() -> None:
    done = LoggedIn("https://as.example", ("read", "write"), refresh_token=True)
    assert parse_join_line(logged_in_line(done)) == done


def test_a_sign_in_line_of_a_daemon_that_takes_no_paste_offers_none() -> None:
    """A daemon from before pastes says no `paste`: the terminal then offers none."""
    older = hello.ok_reply(sign_in={"url": URL, "code": None, "tab": True})
    assert parse_join_line(older) == SignInShown(URL, None, True, paste=False)


def test_a_refused_paste_round_trips() -> None:
    refused = PasteRefused("The pasted URL is from another login attempt", "Paste the other")
    assert parse_join_line(paste_refused_line(refused)) == refused


def test_a_pasted_address_round_trips() -> None:
    pasted = "http://127.0.0.1:8123/callback?code=c&state=s"
    assert parse_pasted_line(pasted_line(pasted)) == pasted


CODE = "SECRET-CODE"


@pytest.mark.parametrize(
    "line",
    [
        f"http://127.0.0.1:1/callback?code={CODE}".encode(),
        b"{" + CODE.encode(),
        json.dumps({"mcp-bridge": 1, "pasted": f"?code={CODE}"}).encode(),
        json.dumps({"mcp-bridge": 2, "pasted": [f"?code={CODE}"]}).encode(),
        json.dumps({"mcp-bridge": 2, "typed": f"?code={CODE}"}).encode(),
        json.dumps([f"?code={CODE}"]).encode(),
        json.dumps({"mcp-bridge": 2, "pasted": f"?code={CODE}&state=\ud800"}).encode(),
    ],
)
def test_a_line_that_carries_no_paste_is_refused_without_repeating_it(line: bytes) -> None:
    taken: list[str] = []
    refused = judge_pasted_line(line, taken.append)
    assert refused is not None
    assert CODE not in refused.what + refused.next_step
    assert taken == []


def test_the_logins_verdict_on_a_paste_is_the_terminals_answer() -> None:
    def other_state(url: str) -> None:
        raise CallbackRejected("From another login attempt", next_step="Paste this one's")

    line = pasted_line("http://127.0.0.1:1/callback?state=x")
    assert judge_pasted_line(line, other_state) == PasteRefused(
        "From another login attempt", "Paste this one's"
    )

    def over(url: str) -> None:
        raise AuthError("This login is already over")

    assert judge_pasted_line(line, over) == PasteRefused("This login is already over", "")
    taken: list[str] = []
    assert judge_pasted_line(pasted_line(" http://x/cb?code=c "), taken.append) is None
    assert taken == [" http://x/cb?code=c "]  # judged as typed: the listener strips it


@given(st.binary(max_size=200))
def test_any_bytes_from_a_terminal_are_taken_or_refused(line: bytes) -> None:
    with contextlib.suppress(hello.HelloError):
        assert isinstance(parse_pasted_line(line), str)


def test_the_daemons_failure_keeps_its_words() -> None:
    with pytest.raises(hello.HelloError, match=r"access_denied\. Run it again"):
        parse_join_line(hello.error_reply("access_denied", "Run it again"))


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"sign_in": {"url": 7, "code": None, "tab": True}},
        {"sign_in": {"url": URL, "code": None}},
        {"sign_in": {"url": URL, "code": None, "tab": True, "paste": "yes"}},
        {"paste_refused": {"what": 7, "next_step": ""}},
        {"paste_refused": "no"},
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
    st.sampled_from(
        ["url", "code", "tab", "paste", "issuer", "scopes", "refresh_token", "what", "next_step"]
    ),
    JSON,
)
STEPS = st.sampled_from(["ok", "sign_in", "logged_in", "paste_refused"])


@given(st.dictionaries(STEPS, FIELDS | JSON))
def test_any_line_parses_or_is_refused(fields: dict[str, object]) -> None:
    line = json.dumps({"mcp-bridge": hello.PROTOCOL_VERSION, **fields}).encode()
    try:
        step = parse_join_line(line)
    except hello.HelloError:
        return
    assert isinstance(step, SignInShown | LoggedIn | PasteRefused)


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


def test_the_terminal_offers_a_paste_only_when_it_takes_one() -> None:
    shown = SignInShown(URL, None, False, paste=True)
    offered = joined_sign_in_text("https://mcp.example/mcp", shown, paste=True)
    assert PASTE_OFFER in offered.splitlines()[0]
    assert offered.splitlines()[1:] == [URL]
    unasked = joined_sign_in_text("https://mcp.example/mcp", shown, paste=False)
    assert PASTE_OFFER not in unasked
    refusing = SignInShown(URL, None, False, paste=False)  # the daemon takes none
    assert PASTE_OFFER not in joined_sign_in_text("x", refusing, paste=True)
