"""The status page's pure parts: the HTML (everything a server, an authorization server or
servers.toml supplies is escaped) and the request guard (Host, Origin, Sec-Fetch-Site, CSRF)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.daemon.page_guard import Refusal, check_host, check_post, same_secret
from mcp_bridge.daemon.status_html import PageView, render_page
from mcp_bridge.engine.status_report import ServerRow, server_rows

# What the renderer itself writes; anything else in the parsed page was injected.
TAGS = {
    "html", "head", "meta", "title", "style", "body", "h1", "p", "table", "thead", "tbody",
    "tr", "th", "td", "strong", "br", "code", "span", "a", "form", "input", "button",
}  # fmt: skip
ATTRIBUTES = {
    "lang", "charset", "name", "content", "class", "colspan", "href", "rel", "target",
    "method", "action", "type", "value",
}  # fmt: skip
HOSTILE = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        [
            '"><script>alert(1)</script>',
            "' onmouseover='alert(1)",
            "</td></tr></table><form action=https://evil.example>",
            "&lt;b&gt;&amp;",
            "<!-- --><![CDATA[x]]>",
            "javascript:alert(1)",
        ]
    ),
)


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: set[str] = set()
        self.attributes: set[str] = set()
        self.values: list[str] = []
        self.text: list[str] = []
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            self.attributes.add(name)
            self.values.append(value or "")
            if name == "href":
                self.hrefs.append(value or "")

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def handle_comment(self, data: str) -> None:
        raise AssertionError(f"a comment reached the page: {data!r}")


def parsed(document: str) -> Page:
    page = Page()
    page.feed(document)
    page.close()
    return page


@given(name=HOSTILE, url=HOSTILE, issuer=HOSTILE, scope=HOSTILE, note=HOSTILE, vault=HOSTILE)
def test_hostile_names_urls_and_texts_are_escaped(
    name: str, url: str, issuer: str, scope: str, note: str, vault: str
) -> None:
    login = {
        "server": url,
        "issuer": issuer,
        "tokens": {"scopes": [scope], "refreshable": True, "expires_in_s": 60},
        "refresh": {"refreshes": 1, "last_refresh_s_ago": 5, "last_failure": note},
    }
    view = PageView(
        rows=[ServerRow(url, url, name, login)],
        daemon={"running": True, "pid": 1, "version": note, "uptime_s": 1, "connections": 0},
        vault=vault,
        csrf_token="token",
        servers_problem=note,
        notes={url: note},
        sign_in_urls={url: f"https://as.example/authorize?x={note}"},
    )
    page = parsed(render_page(view))
    assert page.tags <= TAGS
    assert page.attributes <= ATTRIBUTES
    text = "".join(page.text)
    for value in (name, url, issuer, scope, note, vault):
        assert value in text  # shown as text, exactly, whatever characters it holds
    assert url in page.values  # the button's hidden field names the server as given
    assert all(href.startswith("https://as.example/") for href in page.hrefs)


def test_a_sign_in_link_is_only_ever_http_or_https() -> None:
    row = ServerRow("https://x.example/mcp", "https://x.example/mcp")
    for hostile in ("javascript:alert(1)", "data:text/html,x", " javascript:alert(1)"):
        view = PageView([row], {}, "", "token", sign_in_urls={row.key: hostile})
        assert parsed(render_page(view)).hrefs == []


def test_rows_join_named_servers_and_logins_by_canonical_resource() -> None:
    report = {
        "servers": [{"name": "work", "url": "HTTPS://Work.Example:443/mcp"}],
        "logins": [
            {"server": "https://work.example/mcp", "tokens": None},
            {"server": "https://other.example/mcp", "unreadable": True},
        ],
    }
    work, other = server_rows(report)
    assert (work.name, work.key, work.login_state) == (
        "work",
        "https://work.example/mcp",
        "tokens lost: log in again",
    )
    assert (other.name, other.login_state) == (None, "unreadable record: log in again")
    assert server_rows({"servers": "servers.toml line 1: broken", "logins": []}) == []


PORT = 41234
SAME_ORIGIN = {"Host": f"127.0.0.1:{PORT}", "Origin": f"http://127.0.0.1:{PORT}"}


@given(st.text(max_size=30))
def test_only_the_two_loopback_names_with_the_port_are_a_host(host: str) -> None:
    if host.lower() in (f"127.0.0.1:{PORT}", f"localhost:{PORT}"):
        check_host(host, PORT)
        return
    with pytest.raises(Refusal) as refused:
        check_host(host, PORT)
    assert refused.value.status == 403


@pytest.mark.parametrize(
    "headers",
    [
        SAME_ORIGIN,
        {**SAME_ORIGIN, "Sec-Fetch-Site": "same-origin"},
        # What Chromium sends from a page served with Referrer-Policy: no-referrer.
        {"Host": f"localhost:{PORT}", "Origin": "null", "Sec-Fetch-Site": "same-origin"},
    ],
)
def test_the_pages_own_post_passes(headers: dict[str, str]) -> None:
    check_post(headers, port=PORT, form_token="csrf", csrf_token="csrf")


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        (SAME_ORIGIN, "wrong"),
        (SAME_ORIGIN, None),
        ({**SAME_ORIGIN, "Origin": "https://evil.example"}, "csrf"),
        ({**SAME_ORIGIN, "Origin": f"http://localhost:{PORT}"}, "csrf"),
        ({**SAME_ORIGIN, "Sec-Fetch-Site": "same-site"}, "csrf"),
        ({**SAME_ORIGIN, "Origin": "null"}, "csrf"),
        ({**SAME_ORIGIN, "Origin": "null", "Sec-Fetch-Site": "cross-site"}, "csrf"),
        ({"Host": f"127.0.0.1:{PORT}"}, "csrf"),
        ({**SAME_ORIGIN, "Host": f"evil.example:{PORT}"}, "csrf"),
    ],
)
def test_any_other_post_is_refused(headers: dict[str, str], token: str | None) -> None:
    with pytest.raises(Refusal) as refused:
        check_post(headers, port=PORT, form_token=token, csrf_token="csrf")
    assert refused.value.status == 403


@given(st.text(max_size=50))
def test_any_text_compares_with_the_secret_without_error(given_text: str) -> None:
    assert same_secret(given_text, "s3cret") == (given_text == "s3cret")
