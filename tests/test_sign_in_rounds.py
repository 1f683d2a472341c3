"""A 2026-07-28 client that declared URL-mode elicitation gets a sign-in as an MRTR round:
its tool call is answered `input_required` as soon as the authorization URL is known (the
login wait here is far longer than any reply is awaited), the user follows the URL in a
real browser, and the retry carrying the bridge's requestState gets the tool's result.
Against the demo authorization server and its MCP server, through a real bridge process."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import running_bridge
from tests.fixtures.client_sign_in import (
    LONG_LOGIN_WAIT,
    MODES,
    NO_BROWSER,
    counting_tabs,
    echo_params,
    held_retry,
    open_in_headless_browser,
    retry_params,
    sign_in_round,
    sign_in_url,
    tabs_opened,
    url_named_in,
)
from tests.fixtures.mcp_servers import text_of


@MODES
async def test_the_sign_in_comes_as_a_round_and_the_retry_gets_the_result(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    server = auth_server()
    args = (*run_flags, *LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=NO_BROWSER) as bridge:
        first = echo_params("after the sign-in")
        answered = await sign_in_round(bridge, first)
        state = answered["requestState"]
        assert isinstance(state, str)
        assert len(state) > 40
        await open_in_headless_browser(sign_in_url(server, answered))
        retried = await bridge.request("tools/call", retry_params(first, answered, "accept"))
        assert text_of(retried) == "after the sign-in"
        # Spent: the same retry again is refused here, never forwarded with our state.
        again = await bridge.request("tools/call", retry_params(first, answered, "accept"))
        assert again["error"]["code"] == -32602, again
        assert "requestState" in again["error"]["message"]
        assert text_of(await bridge.request("tools/call", echo_params("plain"))) == "plain"
    assert server.stats()["authorizations"] == 1


@MODES
async def test_the_client_that_shows_the_url_gets_no_second_tab_from_the_bridge(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, run_flags: tuple[str, ...]
) -> None:
    """The client opens the URL of its round itself: a browser tab of the bridge's own would
    be a second one, for the same sign-in. A login's tab opens before the login can end
    (it is opened, or not, before the callback is awaited), so once the retry has its
    result the count is final."""
    server = auth_server()
    record = tmp_path / "tabs"
    args = (*run_flags, *LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=counting_tabs(record)) as bridge:
        first = echo_params("one tab")
        answered = await sign_in_round(bridge, first)
        await open_in_headless_browser(sign_in_url(server, answered))
        retried = await bridge.request("tools/call", retry_params(first, answered, "accept"))
        assert text_of(retried) == "one tab"
    assert tabs_opened(record) == []
    assert server.stats()["authorizations"] == 1


@MODES
async def test_a_retry_sent_before_the_login_ends_waits_for_it(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, run_flags: tuple[str, ...]
) -> None:
    """Only the client shows the URL here (no tab of ours), which is when a request of a
    client without URL elicitation is answered at once: the retry must not be, since its
    user has just said they went to the page. Not another round for the same login."""
    server = auth_server()
    record = tmp_path / "tabs"
    args = (*run_flags, *LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=counting_tabs(record)) as bridge:
        first = echo_params("waited")
        answered = await sign_in_round(bridge, first)
        retried = await held_retry(bridge, server, first, answered)
        # Held on the login until the user signs in.
        await open_in_headless_browser(sign_in_url(server, answered))
        assert text_of(await retried) == "waited"
    assert tabs_opened(record) == []
    assert server.stats()["authorizations"] == 1


@MODES
async def test_a_declined_sign_in_is_answered_without_asking_the_server(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    server = auth_server()
    args = (*run_flags, *LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=NO_BROWSER) as bridge:
        first = echo_params("never sent")
        answered = await sign_in_round(bridge, first)
        asked = server.stats()["unauthorized"]
        declined = await bridge.request("tools/call", retry_params(first, answered, "decline"))
        result = declined["result"]
        assert result["isError"] is True, declined
        assert "declined" in result["content"][0]["text"]
        assert server.stats()["unauthorized"] == asked  # the retry went nowhere
        # Asked again, the client gets a new round for the same login.
        again = await sign_in_round(bridge, echo_params("asked again"))
        assert again["requestState"] != answered["requestState"]
        assert sign_in_url(server, again) == sign_in_url(server, answered)
    assert server.stats()["authorizations"] == 0


async def test_a_forged_request_state_is_refused_and_a_foreign_one_reaches_the_server(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    args = (*LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=NO_BROWSER) as bridge:
        forged = {
            **echo_params("forged"),
            "inputResponses": {"mcp-bridge-sign-in": {"action": "accept"}},
            "requestState": "mcp-bridge-sign-in.guessed",
        }
        refused = await bridge.request("tools/call", forged)
        assert refused["error"]["code"] == -32602, refused
        assert server.stats()["unauthorized"] == 0  # answered by the bridge alone
        # A state that is not the bridge's belongs to the remote's own MRTR. This one meets
        # the sign-in first and gets a round of ours; the retry answering ours goes up with
        # the remote's state again, and the remote (the SDK's server) judges it: its own
        # verdict, which names its reason in `data`, comes back.
        foreign = {**echo_params("foreign"), "requestState": "not-the-bridge's"}
        answered = await sign_in_round(bridge, foreign)
        assert server.stats()["unauthorized"] >= 1
        await open_in_headless_browser(sign_in_url(server, answered))
        retried = await bridge.request("tools/call", retry_params(foreign, answered, "accept"))
        assert retried["error"]["data"] == {"reason": "invalid_request_state"}, retried


async def test_a_modern_client_without_url_elicitation_keeps_the_tool_result_naming_the_url(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path
) -> None:
    """Nobody hands this client the URL as something to open: the bridge opens its tab,
    once, as for any client."""
    server = auth_server()
    record = tmp_path / "tabs"
    args = ("--login-wait", "1", server.mcp_url)
    async with running_bridge(bridge_home, *args, env=counting_tabs(record)) as bridge:
        waited = await bridge.request("tools/call", echo_params("no round", {"elicitation": {}}))
        result = waited["result"]
        assert result.get("resultType") != "input_required", waited
        assert result["isError"] is True, waited
        text = result["content"][0]["text"]
        assert f"Open {server.issuer}/authorize?" in text
        await open_in_headless_browser(url_named_in(text))
        signed_in = await bridge.request("tools/call", echo_params("signed in", {}))
        assert text_of(signed_in) == "signed in"
    assert tabs_opened(record) == [url_named_in(text)]


async def test_a_step_up_comes_as_a_round_too(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    """A 403 insufficient_scope starts a login for more scopes (MCP Step-Up Authorization
    Flow): the request that met it gets a round like one that met a 401."""
    server = auth_server()
    args = (*LONG_LOGIN_WAIT, server.mcp_url)
    async with running_bridge(bridge_home, *args, env=NO_BROWSER) as bridge:
        first = echo_params("signed in")
        answered = await sign_in_round(bridge, first)
        await open_in_headless_browser(sign_in_url(server, answered))
        retried = await bridge.request("tools/call", retry_params(first, answered, "accept"))
        assert text_of(retried) == "signed in"
        admin = {**echo_params("root"), "name": "admin_echo"}
        stepping_up = await sign_in_round(bridge, admin)
        assert server.stats()["step_up_challenges"] == 1
        await open_in_headless_browser(sign_in_url(server, stepping_up))
        stepped = await bridge.request("tools/call", retry_params(admin, stepping_up, "accept"))
        assert text_of(stepped) == "admin: root"
    assert server.stats()["authorizations"] == 2
