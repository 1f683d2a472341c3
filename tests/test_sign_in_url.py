"""A request that waited for a sign-in as long as it may hands the client the sign-in URL:
as error -32042 (URL-mode elicitation) to a 2025-11-25 client that declared it, as the
message text to any other. Opening that URL completes the login; the retry works."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import (
    echo,
    mcp_bridge_cli,
    oauth_env,
    running_bridge,
)
from tests.fixtures.client_sign_in import (
    NO_BROWSER,
    initialize,
    open_in_headless_browser,
    url_named_in,
)
from tests.fixtures.mcp_servers import text_of


@pytest.mark.parametrize("run_flags", [(), ("--no-daemon",)], ids=["daemon", "in-process"])
async def test_a_client_that_declared_url_elicitation_is_handed_the_sign_in(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    server = auth_server()
    args = (*run_flags, "--login-wait", "1", server.mcp_url)
    async with running_bridge(bridge_home, *args, env=NO_BROWSER) as bridge:
        waited = await initialize(bridge, {"elicitation": {"url": {}}})
        error = waited["error"]
        assert isinstance(error, dict)
        assert error["code"] == -32042, error
        (elicitation,) = error["data"]["elicitations"]
        assert elicitation["mode"] == "url"
        assert elicitation["url"].startswith(f"{server.issuer}/authorize?")
        assert elicitation["elicitationId"]
        await open_in_headless_browser(elicitation["url"])
        assert "result" in await initialize(bridge, {"elicitation": {"url": {}}})
    assert server.stats()["authorizations"] == 1


async def test_any_other_client_reads_the_sign_in_url_in_the_message(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    args = ("--login-wait", "1", server.mcp_url)
    async with running_bridge(bridge_home, *args, env=NO_BROWSER) as bridge:
        waited = await initialize(bridge, {})
        error = waited["error"]
        assert isinstance(error, dict)
        assert error["code"] != -32042  # it never said it could handle that
        message = str(error["message"])
        assert f"Open {server.issuer}/authorize?" in message
        assert f"mcp-bridge login {server.mcp_url}" in message
        await open_in_headless_browser(url_named_in(message))
        assert "result" in await initialize(bridge, {})


async def test_a_tool_call_that_waited_for_a_sign_in_gets_a_tool_result_naming_the_url(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    """Hosts show a tool result in the conversation; a bare JSON-RPC error reads as a
    broken server. The handshake comes from the cache (the login is gone), so the tool
    call is the request that needs the sign-in."""
    server = auth_server()
    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "first")) == "first"
    assert (await mcp_bridge_cli(bridge_home, "logout", server.mcp_url, env=oauth_env()))[0] == 0
    args = ("--login-wait", "1", server.mcp_url)
    async with running_bridge(bridge_home, *args, env=NO_BROWSER) as bridge:
        assert "result" in await bridge.initialize()
        waited = await echo(bridge, "needs a login")
        result = waited["result"]
        assert result["isError"] is True, waited
        text = result["content"][0]["text"]
        assert f"Open {server.issuer}/authorize?" in text
        await open_in_headless_browser(url_named_in(text))
        assert text_of(await echo(bridge, "signed in")) == "signed in"
