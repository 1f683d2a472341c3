"""Joining a login that a client shows the URL of (a 2026-07-28 client's sign-in round), so
that the daemon opened no tab for it: `mcp-bridge login` in a terminal prints that URL and
the daemon opens its tab (a person asked), and a client without URL elicitation is answered
with the URL as soon as it meets the login, not after `--login-wait`. Either way it stays one
login: one authorization at the demo AS. Real bridge processes and daemon, the demo AS and
its MCP server; tabs are counted by a $BROWSER that records them."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import REPLY_TIMEOUT_S, mcp_bridge_cli, oauth_env, running_bridge
from tests.fixtures.client_sign_in import (
    LONG_LOGIN_WAIT,
    NO_URL_ELICITATION,
    counting_tabs,
    echo_params,
    open_in_headless_browser,
    retry_params,
    sign_in_round,
    sign_in_url,
    tabs_opened,
    url_named_in,
)
from tests.fixtures.daemon_process import daemon_process
from tests.fixtures.mcp_servers import text_of
from tests.fixtures.terminal_login import printed_url, terminal_login


async def until_tab_opened(record: Path) -> list[str]:
    """The tabs recorded, once there is one (the daemon opens it in the background)."""
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        while not (tabs := tabs_opened(record)):  # noqa: ASYNC110 - another process writes it
            await asyncio.sleep(0.05)
    return tabs


async def test_a_terminal_login_joining_a_round_clients_login_prints_its_url_and_opens_the_tab(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, daemon_transport: str
) -> None:
    """On each daemon transport: on loopback TCP the join proves itself as any hello does."""
    server = auth_server()
    record = tmp_path / "tabs"
    env = counting_tabs(record)
    async with running_bridge(bridge_home, *LONG_LOGIN_WAIT, server.mcp_url, env=env) as bridge:
        first = echo_params("after the terminal's sign-in")
        answered = await sign_in_round(bridge, first)
        url = sign_in_url(server, answered)
        assert tabs_opened(record) == []  # the client shows it: no tab of ours so far
        async with terminal_login(bridge_home, server.mcp_url, env) as login:
            printed, said = await printed_url(login, server)
            assert printed == url, said  # the daemon's login: no second one
            assert await until_tab_opened(record) == [url]  # a person asked: the tab
            await open_in_headless_browser(url)  # the person signs in in that tab
            assert login.stderr is not None
            async with asyncio.timeout(REPLY_TIMEOUT_S):
                said += (await login.stderr.read()).decode()
                assert await login.wait() == 0, said
        assert f"logged in to {server.mcp_url} at {server.issuer}" in said
        retried = await bridge.request("tools/call", retry_params(first, answered, "accept"))
        assert text_of(retried) == "after the terminal's sign-in"
    assert tabs_opened(record) == [url]
    assert server.stats()["authorizations"] == 1


async def test_a_client_without_url_elicitation_joining_a_round_clients_login_gets_the_url_at_once(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path
) -> None:
    """The login wait (600 s) is far longer than the fixture awaits a reply (30 s): an
    answer at all means it came early."""
    server = auth_server()
    record = tmp_path / "tabs"
    env = counting_tabs(record)
    args = (*LONG_LOGIN_WAIT, server.mcp_url)
    async with (
        running_bridge(bridge_home, *args, env=env) as rounds,
        running_bridge(bridge_home, *args, env=env) as plain,
    ):
        first = echo_params("after the sign-in")
        answered = await sign_in_round(rounds, first)
        url = sign_in_url(server, answered)
        waited = await plain.request("tools/call", echo_params("plain", NO_URL_ELICITATION))
        result = waited["result"]
        assert result["isError"] is True, waited
        assert url_named_in(result["content"][0]["text"]) == url
        assert tabs_opened(record) == []  # both clients show the URL
        await open_in_headless_browser(url)
        retried = await rounds.request("tools/call", retry_params(first, answered, "accept"))
        assert text_of(retried) == "after the sign-in"
        again = await plain.request("tools/call", echo_params("plain", NO_URL_ELICITATION))
        assert text_of(again) == "plain"
    assert tabs_opened(record) == []
    assert server.stats()["authorizations"] == 1


async def test_a_terminal_that_stops_waiting_leaves_the_daemons_login_running(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path
) -> None:
    """Ctrl-C in the terminal ends its wait, not the login the client waits for."""
    server = auth_server()
    env = counting_tabs(tmp_path / "tabs")
    async with running_bridge(bridge_home, *LONG_LOGIN_WAIT, server.mcp_url, env=env) as bridge:
        first = echo_params("signed in after all")
        answered = await sign_in_round(bridge, first)
        async with terminal_login(bridge_home, server.mcp_url, env) as login:
            url, _ = await printed_url(login, server)
            login.terminate()
            await login.wait()
        await open_in_headless_browser(url)
        retried = await bridge.request("tools/call", retry_params(first, answered, "accept"))
        assert text_of(retried) == "signed in after all"
    assert server.stats()["authorizations"] == 1


async def test_with_no_login_running_in_the_daemon_the_terminal_signs_in_itself(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    """The control: a daemon that runs no login for the server leaves the login to the
    command, as without a daemon (the redirect-following browser signs in)."""
    server = auth_server()
    async with daemon_process(bridge_home):
        code, said = await mcp_bridge_cli(bridge_home, "login", server.mcp_url, env=oauth_env())
    assert code == 0, said
    assert "already signing in" not in said
    assert f"logged in to {server.mcp_url} at {server.issuer}" in said
    assert server.stats()["authorizations"] == 1
