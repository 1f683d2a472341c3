"""A sign-in round whose user pressed Deny at the authorization server: the login ends with
that refusal, the bridge starts no other by itself, and a client's retry that comes after
it is handed the URL of the next login (a new round) instead of waiting, unseen, on a login
whose URL nobody showed it; the storm brake stops a fourth refused login in a row. Real
bridge processes and daemon, the demo AS with its consent page, `mcp-bridge login` joined
where the test must know that the refused login is over; the browser that presses Deny is
an HTTP client that follows the AS's redirect to the bridge's listener."""

from __future__ import annotations

from pathlib import Path

import aiohttp

from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.bridge_process import running_bridge
from tests.fixtures.client_sign_in import (
    LONG_LOGIN_WAIT,
    MODES,
    counting_tabs,
    echo_params,
    held_retry,
    open_in_headless_browser,
    retry_params,
    sign_in_round,
    sign_in_url,
    tabs_opened,
)
from tests.fixtures.mcp_servers import text_of
from tests.fixtures.terminal_login import denied_redirect, joined_terminal

DENIED = "refused the login: access_denied"


async def deny_in_browser(http: aiohttp.ClientSession, server: AuthServer, url: str) -> None:
    """The user opens `url` and presses Deny; the browser lands on the bridge's listener,
    which says the sign-in failed."""
    async with http.get(await denied_redirect(http, server, url)) as response:
        assert response.status == 400, await response.text()
        assert "failed" in await response.text()


async def test_a_retry_after_a_denied_sign_in_is_handed_the_next_logins_url(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    """The terminal that joined the login ends with it: only then is the retry sent."""
    server = auth_server(consent="page")
    async with joined_terminal(server, bridge_home, tmp_path, "after the refusal") as joined:
        await deny_in_browser(http, server, joined.url)
        assert await joined.ended() == 1, joined.said
        assert DENIED in joined.said
        retry = retry_params(joined.first, joined.answered, "accept")
        again = await sign_in_round(joined.bridge, retry)
        url = sign_in_url(server, again)
        assert url != joined.url
        await open_in_headless_browser(url)
        retried = await joined.bridge.request("tools/call", retry_params(retry, again, "accept"))
        assert text_of(retried) == "after the refusal"
    # The person's tab for the login they joined; none for the one the client showed.
    assert tabs_opened(tmp_path / "tabs") == [joined.url]
    stats = server.stats()
    assert (stats["denials"], stats["token_exchanges"]) == (1, 1)


@MODES
async def test_denied_sign_ins_start_no_login_of_their_own_and_the_brake_stops_a_fourth(
    auth_server: AuthServerFactory,
    bridge_home: Path,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    run_flags: tuple[str, ...],
) -> None:
    """Each retry waits on its round's login and gets its refusal; a login is started only
    by a request (no tab ever opens: each URL went to the client), and after three refused
    in a row the fourth request is told why none starts."""
    server = auth_server(consent="page")
    record = tmp_path / "tabs"
    args = (*run_flags, *LONG_LOGIN_WAIT, server.mcp_url)
    urls: list[str] = []
    async with running_bridge(bridge_home, *args, env=counting_tabs(record)) as bridge:
        for attempt in range(3):
            first = echo_params(f"attempt {attempt}")
            answered = await sign_in_round(bridge, first)
            urls.append(sign_in_url(server, answered))
            retried = await held_retry(bridge, server, first, answered)
            await deny_in_browser(http, server, urls[-1])
            refused = await retried
            assert DENIED in refused["error"]["message"], refused
        braked = await bridge.request("tools/call", echo_params("a fourth"))
        assert "none completed; not opening another browser tab" in str(braked), braked
    assert len(set(urls)) == 3
    assert tabs_opened(record) == []
    stats = server.stats()
    assert (stats["denials"], stats["token_exchanges"]) == (3, 0)
