"""Signing in through the client, for a server that never answers 401 (the demo's
`auth_required=False`, as the TypeScript SDK's `withMcpAuth` with `required: false`): its
protected-resource metadata naming an authorization server is the only sign that it wants
OAuth, so a request with no login starts the login from its headers, not from a challenge.
Each kind of client must be told as it is after a 401: a 2026-07-28 client that declared URL
elicitation gets a round and a 2025-11-25 one error -32042, both as soon as the URL is known
and with no browser tab of ours; any other gets a tool result naming the URL, and our tab.

The client's opening goes out first, without a token, while the bridge reads the server's
metadata; the tool call after it is the request that meets the sign-in. Real bridge
processes against the demo authorization server; tabs are counted by a $BROWSER that
records them (the login wait is far longer than any reply is awaited: an answer at all
means it came early)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.bridge_process import echo, running_bridge
from tests.fixtures.client_sign_in import (
    LONG_LOGIN_WAIT,
    MODES,
    call_signing_in_through_the_client,
    counting_tabs,
    echo_params,
    initialize,
    open_in_headless_browser,
    sign_in_round,
    sign_in_url,
    tabs_opened,
    url_named_in,
)
from tests.fixtures.mcp_servers import modern_meta, text_of


def never_challenged(server: AuthServer, authorizations: int) -> None:
    """The server signed `authorizations` logins in, and never answered 401."""
    stats = server.stats()
    assert (stats["unauthorized"], stats["authorizations"]) == (0, authorizations), stats


def tool_result_naming_the_url(server: AuthServer, reply: dict[str, Any]) -> str:
    """The URL the tool result `reply` must be (an error, naming it), for a plain client."""
    result = reply["result"]
    assert result.get("resultType") != "input_required", reply
    assert result["isError"] is True, reply
    text = result["content"][0]["text"]
    assert isinstance(text, str)
    assert f"Open {server.issuer}/authorize?" in text, text
    return url_named_in(text)


@pytest.mark.parametrize("era", ["2026-07-28", "2025-11-25"])
@MODES
async def test_a_client_that_shows_the_url_is_handed_it_at_once_and_no_tab(
    auth_server: AuthServerFactory,
    bridge_home: Path,
    tmp_path: Path,
    run_flags: tuple[str, ...],
    era: str,
) -> None:
    """A round (2026-07-28) or error -32042 (2025-11-25), the user follows its URL, and the
    retry gets the tool's result."""
    server = auth_server(auth_required=False)
    record = tmp_path / "tabs"
    args = (*run_flags, *LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=counting_tabs(record)) as bridge:
        text = await call_signing_in_through_the_client(bridge, server, era)
        assert text == "after the sign-in"
    assert tabs_opened(record) == []
    never_challenged(server, 1)


async def test_a_plain_client_gets_a_tool_result_naming_the_url_and_our_tab(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path
) -> None:
    """Nobody hands this client the URL as something to open: our tab shows it, once."""
    server = auth_server(auth_required=False)
    record = tmp_path / "tabs"
    args = ("--login-wait", "1", server.mcp_url)
    async with running_bridge(bridge_home, *args, env=counting_tabs(record)) as bridge:
        assert "result" in await initialize(bridge, {})
        url = tool_result_naming_the_url(server, await echo(bridge, "needs a login"))
        await open_in_headless_browser(url)
        assert text_of(await echo(bridge, "signed in")) == "signed in"
    assert tabs_opened(record) == [url]
    never_challenged(server, 1)


async def test_a_plain_client_joining_a_round_clients_login_is_told_the_url_at_once(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path
) -> None:
    """Only the round's client shows the URL (no tab of ours), so a plain client's request
    that joins the login would show its user nothing while it waited: it is answered with
    the same URL at once."""
    server = auth_server(auth_required=False)
    record = tmp_path / "tabs"
    args = (*LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=counting_tabs(record)) as bridge:
        assert "result" in await bridge.request("server/discover", {"_meta": modern_meta()})
        answered = await sign_in_round(bridge, echo_params("a round"))
        plain = await bridge.request("tools/call", echo_params("no round", {}))
        assert tool_result_naming_the_url(server, plain) == sign_in_url(server, answered)
    assert tabs_opened(record) == []
    never_challenged(server, 0)
