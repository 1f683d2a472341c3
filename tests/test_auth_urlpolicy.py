"""The URL policy (MCP Security Best Practices) and the canonical resource URI (RFC 8707)."""

from __future__ import annotations

import unicodedata

import pytest
import yarl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mcp_bridge.auth.errors import UrlRefused
from mcp_bridge.auth.urlpolicy import (
    NetworkZone,
    UrlPolicy,
    canonical_resource,
    network_zone,
    normalized_host,
)

PUBLIC = UrlPolicy.for_server("https://mcp.example.com/mcp")


@pytest.mark.parametrize(
    ("host", "zone"),
    [
        ("127.0.0.1", NetworkZone.LOOPBACK),
        ("127.9.9.9", NetworkZone.LOOPBACK),
        ("::1", NetworkZone.LOOPBACK),
        ("localhost", NetworkZone.LOOPBACK),
        ("app.localhost", NetworkZone.LOOPBACK),
        ("::ffff:127.0.0.1", NetworkZone.LOOPBACK),
        ("2130706433", NetworkZone.LOOPBACK),  # inet_aton form of 127.0.0.1
        ("0x7f.1", NetworkZone.LOOPBACK),
        ("10.1.2.3", NetworkZone.PRIVATE),
        ("172.16.0.1", NetworkZone.PRIVATE),
        ("192.168.1.1", NetworkZone.PRIVATE),
        ("fd00::1", NetworkZone.PRIVATE),
        ("169.254.169.254", NetworkZone.LINK_LOCAL),
        ("fe80::1", NetworkZone.LINK_LOCAL),
        ("0.0.0.0", NetworkZone.FORBIDDEN),
        ("224.0.0.1", NetworkZone.FORBIDDEN),
        ("93.184.215.14", NetworkZone.PUBLIC),
        ("auth.example.com", NetworkZone.PUBLIC),
    ],
)
def test_network_zone_classifies_literal_addresses_and_localhost(
    host: str, zone: NetworkZone
) -> None:
    assert network_zone(host) is zone


def test_https_endpoint_is_allowed() -> None:
    assert PUBLIC.check_fetch("https://auth.example.com/token", role="token") == (
        "https://auth.example.com/token"
    )


def test_plain_http_endpoint_is_refused_without_opt_in() -> None:
    with pytest.raises(UrlRefused, match="plain http"):
        PUBLIC.check_fetch("http://auth.example.com/token", role="token")


def test_plain_http_endpoint_is_allowed_with_allow_http() -> None:
    policy = UrlPolicy.for_server("https://mcp.example.com/mcp", allow_http=True)
    policy.check_fetch("http://auth.example.com/token", role="token")


def test_plain_http_to_loopback_is_allowed_for_a_loopback_server() -> None:
    policy = UrlPolicy.for_server("http://127.0.0.1:8000/mcp")
    policy.check_fetch("http://localhost:9000/token", role="token")
    policy.check_fetch("http://[::1]:9000/token", role="token")


def test_server_url_on_plain_http_elsewhere_is_refused() -> None:
    with pytest.raises(UrlRefused, match="plain http"):
        UrlPolicy.for_server("http://mcp.example.com/mcp")


@pytest.mark.parametrize(
    "url",
    [
        "https://10.0.0.5/token",
        "https://169.254.169.254/latest/meta-data",
        "https://127.0.0.1/token",
        "https://[::1]/token",
        "https://localhost/token",
        "https://2130706433/token",
        "https://[::ffff:10.0.0.1]/token",
    ],
)
def test_discovered_url_into_internal_network_is_refused_for_a_public_server(url: str) -> None:
    with pytest.raises(UrlRefused, match="SSRF"):
        PUBLIC.check_fetch(url, role="token_endpoint")


def test_discovered_url_into_the_servers_own_zone_is_allowed() -> None:
    policy = UrlPolicy.for_server("https://10.0.0.2/mcp")
    policy.check_fetch("https://10.9.9.9/token", role="token")


def test_loopback_server_may_not_reach_link_local_metadata_service() -> None:
    policy = UrlPolicy.for_server("http://127.0.0.1:8000/mcp")
    with pytest.raises(UrlRefused, match="link-local"):
        policy.check_fetch("https://169.254.169.254/", role="authorization server")


def test_allow_private_opens_internal_zones_but_never_unspecified() -> None:
    policy = UrlPolicy.for_server("https://mcp.example.com/mcp", allow_private=True)
    policy.check_fetch("https://10.0.0.5/token", role="token")
    with pytest.raises(UrlRefused, match="non-routable"):
        policy.check_fetch("https://0.0.0.0/token", role="token")


@pytest.mark.parametrize(
    "url",
    [
        "ftp://auth.example.com/x",
        "https://user:pw@auth.example.com/token",
        "https:///token",
        "https://auth.example.com/to ken",
        "https://auth.example.com/\r\nX-Evil: 1",
        "https://auth.example.com:99999/",
    ],
)
def test_malformed_or_odd_endpoint_urls_are_refused(url: str) -> None:
    with pytest.raises(UrlRefused):
        PUBLIC.check_fetch(url, role="token")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "vbscript:msgbox(1)",
        "http://auth.example.com/authorize",
        "ms-settings:privacy",
    ],
)
def test_browser_refuses_everything_but_https_and_loopback_http(url: str) -> None:
    with pytest.raises(UrlRefused):
        PUBLIC.check_browser(url)


def test_browser_allows_https_and_loopback_http() -> None:
    assert PUBLIC.check_browser("https://auth.example.com/authorize?x=1")
    assert PUBLIC.check_browser("http://127.0.0.1:9000/authorize")


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("https://MCP.Example.COM/mcp", "https://mcp.example.com/mcp"),
        ("HTTPS://mcp.example.com/Mcp", "https://mcp.example.com/Mcp"),  # path case kept
        ("https://mcp.example.com/", "https://mcp.example.com"),
        ("https://mcp.example.com", "https://mcp.example.com"),
        ("https://mcp.example.com:443/mcp", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com:8443", "https://mcp.example.com:8443"),
        ("https://mcp.example.com/mcp#frag", "https://mcp.example.com/mcp"),
        ("https://mcp.example.com/mcp/", "https://mcp.example.com/mcp/"),
        ("http://[::1]:8000/mcp", "http://[::1]:8000/mcp"),
    ],
)
def test_canonical_resource_uri_follows_rfc8707(given: str, canonical: str) -> None:
    assert canonical_resource(given) == canonical


# Hosts that read as names but that IDNA (UTS #46: NFKC, case folding, the ideographic full
# stops as label separators) turns into addresses: aiohttp, through yarl, connects there.
DISGUISED_HOSTS = [
    ("１２７.０.０.１", "127.0.0.1", NetworkZone.LOOPBACK),  # fullwidth digits
    ("10。0。0。1", "10.0.0.1", NetworkZone.PRIVATE),  # U+3002 ideographic full stop
    ("10．0．0．1", "10.0.0.1", NetworkZone.PRIVATE),  # U+FF0E fullwidth full stop
    ("10｡0｡0｡1", "10.0.0.1", NetworkZone.PRIVATE),  # U+FF61 halfwidth ideographic stop
    ("１６９.２５４.１６９.２５４", "169.254.169.254", NetworkZone.LINK_LOCAL),
    ("ｌｏｃａｌｈｏｓｔ", "localhost", NetworkZone.LOOPBACK),
    ("ⅻ.ＬＯＣＡＬＨＯＳＴ", "xii.localhost", NetworkZone.LOOPBACK),  # roman numeral, too
    ("０ｘ７ｆ.１", "0x7f.1", NetworkZone.LOOPBACK),  # and then inet_aton's forms
    ("::ｆｆｆｆ:127.0.0.1", "::ffff:127.0.0.1", NetworkZone.LOOPBACK),
]


@pytest.mark.parametrize(("host", "connects_to", "zone"), DISGUISED_HOSTS)
def test_hosts_are_judged_after_the_normalisation_yarl_applies(
    host: str, connects_to: str, zone: NetworkZone
) -> None:
    bracketed = f"[{host}]" if ":" in host else host
    assert yarl.URL(f"https://{bracketed}/token").raw_host == connects_to
    assert normalized_host(host) == connects_to
    assert network_zone(host) is zone


@pytest.mark.parametrize(("host", "zone"), [(host, zone) for host, _, zone in DISGUISED_HOSTS])
def test_disguised_internal_hosts_are_refused_for_a_public_server(
    host: str, zone: NetworkZone
) -> None:
    bracketed = f"[{host}]" if ":" in host else host
    # urlsplit itself refuses the IPv6 one: ipaddress reads no fullwidth hex.
    with pytest.raises(UrlRefused, match=f"{zone.value} network|cannot be parsed"):
        PUBLIC.check_fetch(f"https://{bracketed}/token", role="token_endpoint")


def test_names_that_stay_names_keep_their_idna_form() -> None:
    assert normalized_host("Bücher.Example") == yarl.URL("https://Bücher.Example/").raw_host
    assert network_zone("bücher.example") is NetworkZone.PUBLIC


def test_characters_idna_ignores_are_ignored_here_too() -> None:
    # A browser (UTS #46) drops U+034F; yarl refuses the host. Either way it is loopback.
    assert network_zone("127\u034f.0.0.1") is NetworkZone.LOOPBACK


def test_a_host_in_characters_newer_than_our_unicode_tables_is_refused() -> None:
    # U+1CCF0 OUTLINED DIGIT ZERO (Unicode 16): yarl's idna maps it to "0", this Python's
    # unicodedata may not know it, so the policy cannot tell where it goes.
    host = "\U0001ccf0"
    if unicodedata.category(host) != "Cn":
        pytest.skip("this Python's Unicode tables know U+1CCF0")
    assert network_zone(host) is NetworkZone.FORBIDDEN
    with pytest.raises(UrlRefused):  # as an unprintable character, even before the zone
        PUBLIC.check_fetch(f"https://{host}/token", role="token")


# Every character NFKC folds into what an address or `localhost` is spelt with, the ASCII
# ones, and a few that stay what they are or that IDNA drops.
_SPELLS = set("0123456789abcdefxlochst.:")
_HOST_CHARS = st.sampled_from(
    sorted(_SPELLS)
    + [
        chr(cp)
        for cp in range(0x80, 0x30000)
        if (folded := unicodedata.normalize("NFKC", chr(cp)).lower()) and set(folded) <= _SPELLS
    ]
    + ["\u3002", "\uff61", "\U0001ccf0", "é", "ß", "\u034f", "\u00ad", "\u200b", "-", "_"]
)


@settings(max_examples=1000)
@given(st.text(_HOST_CHARS, min_size=1, max_size=24) | st.text(min_size=1, max_size=12))
@example("１２７.０.０.１")
@example("10。0。0。1")
@example("\U0001ccf0")
def test_the_policy_judges_the_host_yarl_would_connect_to(host: str) -> None:
    url = f"https://{host}/token"
    try:
        connects_to = yarl.URL(url).raw_host  # what aiohttp hands the resolver
    except ValueError:
        return  # yarl refuses the URL: aiohttp never connects anywhere
    try:
        PUBLIC.check_fetch(url, role="token")
    except UrlRefused:
        return  # refused: nothing to connect to
    assert network_zone(connects_to or "") is NetworkZone.PUBLIC


@pytest.mark.parametrize(
    "url",
    [
        "https://mcp.example.com/<script>",
        'https://mcp.example.com/"quoted"',
        "https://mcp.example.com/{tenant}/mcp",
        "https://evil.example\\@mcp.example.com/mcp",
        "https://mcp.example.com/`x`",
    ],
)
def test_characters_no_url_holds_unencoded_are_refused_with_a_clear_message(url: str) -> None:
    # RFC 3986 leaves them out of URLs; a URL that holds them was mistyped, is a template
    # ({tenant}), or plays on parsers that read a backslash as a slash.
    with pytest.raises(UrlRefused, match="percent-encode"):
        canonical_resource(url)
