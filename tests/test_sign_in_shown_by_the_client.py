"""A client that shows the sign-in URL itself is handed it as soon as it is known, and the
bridge opens no browser tab of its own for it: a 2025-11-25 client that declared URL-mode
elicitation (error -32042) as much as a 2026-07-28 one (an MRTR round), and also when the
client's opening (`initialize`, `server/discover`) was answered from the cache, so that the
bridge's replay of it reaches the remote first and meets the sign-in before the request the
client waits on. Real bridge processes against the demo authorization server; tabs are
counted by a $BROWSER that records them (the login wait is far longer than any reply is
awaited: an answer at all means it came early)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.bridge_process import (
    echo,
    mcp_bridge_cli,
    oauth_env,
    running_bridge,
)
from tests.fixtures.client_sign_in import (
    LONG_LOGIN_WAIT,
    MODES,
    URL_ELICITATION,
    call_signing_in_through_the_client,
    counting_tabs,
    echo_params,
    initialize,
    open_in_headless_browser,
    tabs_opened,
    url_elicited,
)
from tests.fixtures.mcp_servers import modern_meta, text_of


@MODES
async def test_a_2025_client_with_url_elicitation_is_handed_the_url_at_once_and_no_tab(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, run_flags: tuple[str, ...]
) -> None:
    server = auth_server()
    record = tmp_path / "tabs"
    args = (*run_flags, *LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=counting_tabs(record)) as bridge:
        url = url_elicited(server, await initialize(bridge, URL_ELICITATION))
        await open_in_headless_browser(url)
        assert "result" in await initialize(bridge, URL_ELICITATION)
    assert tabs_opened(record) == []
    assert server.stats()["authorizations"] == 1


async def _first_visit(home: Path, server: AuthServer, era: str) -> None:
    """A plain client's first session (signed in through the bridge's tab, which a browser
    that follows the redirects plays), so that its opening is cached; then a logout."""
    async with running_bridge(home, server.mcp_url, env=oauth_env()) as bridge:
        if era == "2026-07-28":
            assert "result" in await bridge.request("server/discover", {"_meta": modern_meta()})
            assert text_of(await bridge.request("tools/call", echo_params("x", {}))) == "x"
        else:
            assert "result" in await bridge.initialize()
            assert text_of(await echo(bridge, "x")) == "x"
    assert (await mcp_bridge_cli(home, "logout", server.mcp_url, env=oauth_env()))[0] == 0


@pytest.mark.parametrize("era", ["2026-07-28", "2025-11-25"])
async def test_an_opening_answered_from_the_cache_does_not_hold_back_the_url_or_open_a_tab(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, era: str
) -> None:
    server = auth_server()
    await _first_visit(bridge_home, server, era)
    record = tmp_path / "tabs"
    args = (*LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=counting_tabs(record)) as bridge:
        assert await call_signing_in_through_the_client(bridge, server, era) == (
            "after the sign-in"
        )
    assert tabs_opened(record) == []
    assert server.stats()["authorizations"] == 2
