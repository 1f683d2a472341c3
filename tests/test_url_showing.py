"""UrlShowing without a browser: when our tab opens a login's URL, and when a client that
was handed it shows it instead, in whatever order the login and the requests get there.
The rules are also checked over any sequence of events (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.auth.url_showing import UrlShowing

URL = "https://as.example/authorize?state=1"
NEXT_URL = "https://as.example/authorize?state=2"


def test_with_nobody_to_show_it_the_tab_opens_once_per_url() -> None:
    showing = UrlShowing()
    assert showing.url_ready(URL) is True
    assert showing.person_asks() is False  # already open
    showing.url_gone()
    assert showing.url_ready(NEXT_URL) is True


def test_a_client_that_waits_before_the_url_is_ready_shows_it_instead() -> None:
    showing = UrlShowing()
    showing.client_waits()  # the URL client's request started the login
    assert showing.url_ready(URL) is False
    assert showing.client_done(URL) is False  # handed over: no tab after it either


def test_a_client_that_joins_a_login_already_in_its_tab_changes_nothing() -> None:
    showing = UrlShowing()
    assert showing.url_ready(URL) is True  # a plain client's login: its tab is open
    showing.client_waits()
    assert showing.client_done(URL) is False  # the URL client shows it too; no second tab


def test_a_client_that_leaves_without_handing_the_url_over_leaves_the_tab_due() -> None:
    showing = UrlShowing()
    showing.client_waits()
    assert showing.url_ready(URL) is False
    assert showing.client_done(None) is True  # cancelled in between: nobody shows it


def test_the_tab_waits_for_the_last_of_several_clients() -> None:
    showing = UrlShowing()
    showing.client_waits()
    showing.client_waits()
    assert showing.url_ready(URL) is False
    assert showing.client_done(None) is False  # the other one still hands it over
    assert showing.client_done(URL) is False


def test_a_client_gone_before_the_url_is_ready_holds_nothing_back() -> None:
    showing = UrlShowing()
    showing.client_waits()
    assert showing.client_done(None) is False  # nothing to open yet
    assert showing.url_ready(URL) is True


def test_a_client_handed_an_older_url_does_not_show_the_new_one() -> None:
    showing = UrlShowing()
    showing.client_waits()
    assert showing.url_ready(URL) is False
    showing.url_gone()
    assert showing.url_ready(NEXT_URL) is False  # the request still waits
    assert showing.client_done(URL) is True  # it handed over the old URL only


def test_a_handed_url_stays_with_the_client_until_it_is_gone() -> None:
    showing = UrlShowing()
    showing.client_waits()
    assert showing.url_ready(URL) is False
    assert showing.client_done(URL) is False
    showing.client_waits()  # the retry, or another request, comes and goes
    assert showing.client_done(None) is False


@pytest.mark.parametrize("before_the_url", [True, False], ids=["before", "after"])
def test_a_person_asking_gets_the_tab_even_when_a_client_has_the_url(
    before_the_url: bool,
) -> None:
    showing = UrlShowing()
    showing.client_waits()
    if before_the_url:
        assert showing.person_asks() is False
        assert showing.url_ready(URL) is True
    else:
        assert showing.url_ready(URL) is False
        assert showing.person_asks() is True
    assert showing.client_done(URL) is False


def test_a_person_asking_lasts_one_login() -> None:
    showing = UrlShowing()
    assert showing.person_asks() is False
    showing.url_gone()  # that login ended before it had a URL
    showing.client_waits()
    assert showing.url_ready(URL) is False


def test_a_url_only_clients_show_is_left_to_them_until_the_tab_opens() -> None:
    """What a request of a client that reads the URL only in an error goes by: it is
    answered at once while no tab of ours shows the URL."""
    showing = UrlShowing()
    assert showing.left_to_clients is False  # no URL yet
    showing.client_waits()
    showing.url_ready(URL)
    assert showing.left_to_clients is True
    assert showing.person_asks() is True  # `mcp-bridge login`, the Login button
    assert showing.left_to_clients is False
    showing.url_gone()
    assert showing.left_to_clients is False


def test_a_url_in_our_tab_is_not_left_to_clients() -> None:
    showing = UrlShowing()
    assert showing.url_ready(URL) is True
    assert showing.left_to_clients is False


def test_done_without_waiting_is_a_bug_said_at_once() -> None:
    with pytest.raises(RuntimeError, match="client_waits"):
        UrlShowing().client_done(None)


EVENTS = st.lists(
    st.sampled_from(["waits", "done-handed", "done-not", "ask", "ready", "ready-next", "gone"]),
    max_size=40,
)


@given(EVENTS)
def test_any_order_opens_at_most_once_per_url_and_never_leaves_a_url_unshown(
    events: list[str],
) -> None:
    """A model of who holds the URL: the tab opens at most once per ready URL, never while
    a client waits to show it or has it (unless a person asked), and once nobody waits,
    a ready URL that no client has is in a tab."""
    showing = UrlShowing()
    waiting = 0
    url: str | None = None
    handed = asked = opened = False
    for event in events:
        if event == "waits":
            showing.client_waits()
            waiting += 1
            opens = False
        elif event.startswith("done"):
            if not waiting:
                continue
            waiting -= 1
            gave = url if event == "done-handed" else None
            handed = handed or (gave is not None)
            opens = showing.client_done(gave)
        elif event == "ask":
            asked = True
            opens = showing.person_asks()
        elif event.startswith("ready"):
            url = URL if event == "ready" else NEXT_URL
            handed = opened = False
            opens = showing.url_ready(url)
        else:
            showing.url_gone()
            url, handed, asked, opened = None, False, False, False
            continue
        if opens:
            assert url is not None
            assert not opened
            assert asked or not (waiting or handed)
            opened = True
        if url is not None and not waiting and not handed:
            assert opened
        if url is not None and asked:
            assert opened
        assert showing.left_to_clients is (url is not None and not opened)
