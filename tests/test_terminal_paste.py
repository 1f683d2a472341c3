"""The terminal's paste reader of `mcp-bridge login`, for its own login and for one that
joined the daemon's: a line that is not text (bytes that are not UTF-8: line noise, a
binary pasted by mistake) is refused on a line of its own, and the reader goes on, so the
address pasted after it still finishes the login. Real `mcp-bridge login` processes reading
a pseudo-terminal, a real daemon, the demo AS; "the browser on another machine" is an HTTP
client that stops at the redirect."""

from __future__ import annotations

import os
from pathlib import Path

import aiohttp
import pytest

from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.client_sign_in import counting_tabs, tabs_opened
from tests.fixtures.terminal_login import (
    Env,
    joined_terminal,
    keyboard,
    printed_url,
    redirect_from,
    said_to_the_end,
    said_until,
    terminal_login,
    type_line,
)

NOT_TEXT = b"\xff\xfe\x80 not UTF-8\n"
REFUSED = "is not UTF-8 text"
# How Python decodes the terminal depends on the locale: strictly under most (a UTF-8
# desktop's; PYTHONIOENCODING says so here), or with surrogateescape under C.UTF-8.
DECODINGS = pytest.mark.parametrize(
    "terminal", [{"PYTHONIOENCODING": "utf-8"}, {}], ids=["strict", "locale"]
)


@DECODINGS
async def test_a_line_that_is_not_text_is_refused_and_the_own_login_takes_the_next_paste(
    auth_server: AuthServerFactory,
    bridge_home: Path,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    terminal: Env,
) -> None:
    """No daemon runs: the command signs in by itself (its tab opens nowhere)."""
    server = auth_server()
    env = {**counting_tabs(tmp_path / "tabs"), **terminal}
    with keyboard() as (stdin, keys):
        async with terminal_login(bridge_home, server.mcp_url, env, stdin) as login:
            url, said = await printed_url(login, server)
            os.write(keys, NOT_TEXT)
            said += await said_until(login, REFUSED)
            type_line(keys, await redirect_from(http, url))
            code, rest = await said_to_the_end(login)
    said += rest
    assert code == 0, said
    assert f"logged in to {server.mcp_url}" in said
    assert "Traceback" not in said
    assert "Exception in thread" not in said
    assert tabs_opened(tmp_path / "tabs") == [url]
    assert server.stats()["token_exchanges"] == 1


@DECODINGS
async def test_a_line_that_is_not_text_is_refused_and_the_joined_login_takes_the_next_paste(
    auth_server: AuthServerFactory,
    bridge_home: Path,
    tmp_path: Path,
    http: aiohttp.ClientSession,
    terminal: Env,
) -> None:
    server = auth_server()
    text = "after the stray bytes"
    async with joined_terminal(server, bridge_home, tmp_path, text, terminal) as joined:
        os.write(joined.keys, NOT_TEXT)
        await joined.until(REFUSED)
        joined.paste(await redirect_from(http, joined.url))
        assert await joined.ended() == 0, joined.said
        assert f"logged in to {server.mcp_url}" in joined.said
        assert "Traceback" not in joined.said
        assert "Exception in thread" not in joined.said
    assert server.stats()["token_exchanges"] == 1
