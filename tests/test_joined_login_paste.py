"""A terminal that joined the daemon's login takes the address the browser ended on, pasted,
as a terminal login of its own does: over SSH the browser runs on another machine, and its
redirect to the daemon's loopback listener never arrives. The daemon judges the paste as it
would that redirect (this login's state, the AS's `iss`, its error), and a paste it refuses
leaves the login waiting. Real bridge processes and daemon, the demo AS, and `mcp-bridge
login` reading a pseudo-terminal; "the browser on another machine" is an HTTP client that
stops at the redirect."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode, urlsplit

import aiohttp

from mcp_bridge.auth.url_showing import PASTE_OFFER
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.client_sign_in import (
    echo_params,
    held_retry,
    open_in_headless_browser,
    sign_in_round,
    sign_in_url,
)
from tests.fixtures.mcp_servers import text_of
from tests.fixtures.terminal_login import denied_redirect, joined_terminal, query_of, redirect_from


def with_state(url: str, state: str) -> str:
    """`url` with another `state`: the authorization request of another login."""
    parts = urlsplit(url)
    return parts._replace(query=urlencode({**query_of(url), "state": state})).geturl()


async def test_a_pasted_redirect_finishes_the_daemons_login_and_the_waiting_request_goes_on(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    server = auth_server()
    async with joined_terminal(server, bridge_home, tmp_path, "after the paste") as joined:
        assert PASTE_OFFER in joined.said
        # A person is signing in now: the client's retry waits for the login.
        retried = await held_retry(joined.bridge, server, joined.first, joined.answered)
        redirect = await redirect_from(http, joined.url)
        assert not retried.done()
        joined.paste(redirect)
        assert await joined.ended() == 0, joined.said
        assert f"logged in to {server.mcp_url} at {server.issuer}" in joined.said
        assert query_of(redirect)["code"] not in joined.said
        assert text_of(await retried) == "after the paste"
    stats = server.stats()
    assert (stats["authorizations"], stats["token_exchanges"]) == (1, 1)


async def test_a_paste_that_is_not_this_logins_redirect_is_refused_and_the_login_waits_on(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """Each refusal says why on a line of its own and names no code; the login still
    takes the good paste after them, and no refused code is ever redeemed."""
    server = auth_server()
    async with joined_terminal(server, bridge_home, tmp_path, "after the refusals") as joined:
        redirect = await redirect_from(http, joined.url)
        foreign = await redirect_from(http, with_state(joined.url, "another-logins-state"))
        listener, _ = redirect.split("?", 1)
        refused = [
            ("this is not an address", f"not addressed to {listener}"),
            ("http://[127.0.0.1/callback", "not a URL"),
            (redirect.replace(listener, "http://127.0.0.1:9/callback"), "not addressed"),
            (f"{redirect}&code=twice", "repeats a parameter"),
            (foreign, "from another login attempt"),
        ]
        for pasted, words in refused:
            joined.paste(pasted)
            await joined.until(words)
        assert joined.login.returncode is None, joined.said  # still waiting
        joined.paste(redirect)
        assert await joined.ended() == 0, joined.said
        assert f"logged in to {server.mcp_url}" in joined.said
        for pasted in (redirect, foreign):
            assert query_of(pasted)["code"] not in joined.said
        assert text_of(await joined.retry()) == "after the refusals"
    stats = server.stats()
    assert (stats["authorizations"], stats["token_exchanges"]) == (2, 1)


async def test_a_pasted_refusal_of_the_as_ends_the_login_with_its_error(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The user pressed Deny at the AS's consent page: the address pasted carries
    error=access_denied, which ends the daemon's login as that redirect would have; the
    client's next request is handed a new login's URL, not the refused one's."""
    server = auth_server(consent="page")
    async with joined_terminal(server, bridge_home, tmp_path, "never") as joined:
        denied = await denied_redirect(http, server, joined.url)
        joined.paste(denied)
        assert await joined.ended() == 1, joined.said
        assert "refused the login: access_denied (The user said no)" in joined.said
        assert "Traceback" not in joined.said
        again = await sign_in_round(joined.bridge, echo_params("after the refusal"))
        assert sign_in_url(server, again) != joined.url
    stats = server.stats()
    assert (stats["denials"], stats["token_exchanges"]) == (1, 0)


async def test_when_the_browser_finishes_first_the_pasting_terminal_ends_with_the_login(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path
) -> None:
    """The terminal that offered to take a paste is told the login is done, and ends,
    though nothing was typed."""
    server = auth_server()
    async with joined_terminal(server, bridge_home, tmp_path, "the browser's") as joined:
        assert PASTE_OFFER in joined.said
        await open_in_headless_browser(joined.url)
        assert await joined.ended() == 0, joined.said
        assert f"logged in to {server.mcp_url}" in joined.said
        assert text_of(await joined.retry()) == "the browser's"
    assert server.stats()["authorizations"] == 1
