"""A terminal that joined the daemon's login takes the address the browser ended on, pasted,
as a terminal login of its own does: over SSH the browser runs on another machine, and its
redirect to the daemon's loopback listener never arrives. The daemon judges the paste as it
would that redirect (this login's state, the AS's `iss`, its error), and a paste it refuses
leaves the login waiting. Real bridge processes and daemon, the demo AS, and `mcp-bridge
login` reading a pseudo-terminal; "the browser on another machine" is an HTTP client that
stops at the redirect."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit

import aiohttp

from mcp_bridge.auth.url_showing import PASTE_OFFER
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.bridge_process import REPLY_TIMEOUT_S, BridgeProcess, Message, running_bridge
from tests.fixtures.mcp_servers import text_of
from tests.test_joined_logins import printed_url, terminal_login
from tests.test_sign_in_rounds import (
    LONG_LOGIN_WAIT,
    counting_tabs,
    echo_params,
    held_retry,
    retry_params,
    sign_in_round,
    sign_in_url,
)
from tests.test_sign_in_url import open_in_headless_browser

Process = asyncio.subprocess.Process
Env = dict[str, str]


@contextlib.contextmanager
def keyboard() -> Iterator[tuple[int, int]]:
    """A pseudo-terminal: the end a command reads as its stdin (a terminal, so the command
    takes pastes) and the end the test types into."""
    typed, terminal = pty.openpty()
    try:
        yield terminal, typed
    finally:
        os.close(terminal)
        os.close(typed)


def type_line(keys: int, text: str) -> None:
    os.write(keys, text.encode() + b"\n")


async def said_until(login: Process, words: str) -> str:
    """What the command prints on stderr up to the first line that holds `words`."""
    assert login.stderr is not None
    said = ""
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        while line := (await login.stderr.readline()).decode():
            said += line
            if words in line:
                return said
    raise AssertionError(f"the login command ended without saying {words!r}: {said!r}")


async def said_to_the_end(login: Process) -> tuple[int, str]:
    """The command's exit code and what it printed on stderr from here on."""
    assert login.stderr is not None
    async with asyncio.timeout(REPLY_TIMEOUT_S):
        said = (await login.stderr.read()).decode()
        return await login.wait(), said


async def redirect_from(http: aiohttp.ClientSession, url: str) -> str:
    """Where the AS sends the browser from `url` (not followed: the browser is elsewhere)."""
    async with http.get(url, allow_redirects=False) as response:
        assert response.status in (302, 303), await response.text()
        return response.headers["Location"]


async def denied_redirect(http: aiohttp.ClientSession, server: AuthServer, url: str) -> str:
    """The address the AS sends the browser to when the user presses Deny on the consent
    page of `url` (a server with `consent="page"`); not followed."""
    consent = await redirect_from(http, url)
    form = {"id": query_of(consent)["id"], "action": "deny"}
    async with http.post(f"{server.issuer}/consent", data=form, allow_redirects=False) as response:
        denied = response.headers["Location"]
    assert query_of(denied)["error"] == "access_denied"
    return denied


def query_of(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def with_state(url: str, state: str) -> str:
    """`url` with another `state`: the authorization request of another login."""
    parts = urlsplit(url)
    return parts._replace(query=urlencode({**query_of(url), "state": state})).geturl()


@dataclass
class JoinedTerminal:
    """A round client's request started the daemon's login, and `mcp-bridge login` on a
    terminal joined it and printed its URL."""

    bridge: BridgeProcess
    first: Message  # the client's request
    answered: Message  # its sign-in round
    login: Process
    keys: int  # type here, and the command reads it
    url: str
    said: str  # what the command printed so far

    def paste(self, text: str) -> None:
        type_line(self.keys, text)

    async def until(self, words: str) -> None:
        self.said += await said_until(self.login, words)

    async def ended(self) -> int:
        code, rest = await said_to_the_end(self.login)
        self.said += rest
        return code

    async def retry(self) -> Message:
        """The round's retry (it has the tool's result once the login is done)."""
        retry = retry_params(self.first, self.answered, "accept")
        return await self.bridge.request("tools/call", retry)


@contextlib.asynccontextmanager
async def joined_terminal(
    server: AuthServer, home: Path, tmp_path: Path, text: str, terminal: Env | None = None
) -> AsyncIterator[JoinedTerminal]:
    """`text`: what the client's `echo` call says; `terminal`: more environment for the
    login command. The daemon's tab opens on a screen nobody sees (it is only counted)."""
    env = counting_tabs(tmp_path / "tabs")
    async with running_bridge(home, *LONG_LOGIN_WAIT, server.mcp_url, env=env) as bridge:
        first = echo_params(text)
        answered = await sign_in_round(bridge, first)
        with keyboard() as (stdin, keys):
            login_env = {**env, **(terminal or {})}
            async with terminal_login(home, server.mcp_url, login_env, stdin) as login:
                url, said = await printed_url(login, server)
                yield JoinedTerminal(bridge, first, answered, login, keys, url, said)


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
