"""How long a user waits for the sign-in URL when joining a login the daemon runs for a
2026-07-28 client that shows the URL itself (its sign-in round), side by side with the
same wait when nothing is joined. Against the demo AS and its MCP server, through real
`mcp-bridge run` and `mcp-bridge login` processes and a real daemon; each run from a fresh
home (so each registers a client and starts a login). Tabs go to a $BROWSER that counts
them. Run from the repository root: `python -m benchmarks.joined_login_bench [--runs N]`.

Printed (median of N, and the spread):
- terminal joins: `mcp-bridge login URL` started -> the daemon's URL printed on stderr
  (the interpreter's start, the vault check, the join);
- terminal alone: the same command with no daemon, signing in itself (its own discovery,
  registration and listener);
- plain client joins: a tool call of a client without URL elicitation, sent while the round
  client's login waits -> its tool result naming the URL (the login wait is 20 s).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp_bridge.demo.auth_modes import AuthServerModes
from tests.fixtures.auth_server import AuthServer
from tests.fixtures.bridge_process import running_bridge
from tests.fixtures.client_sign_in import (
    NO_URL_ELICITATION,
    counting_tabs,
    echo_params,
    open_in_headless_browser,
    sign_in_round,
    sign_in_url,
)
from tests.fixtures.terminal_login import printed_url, terminal_login

LOGIN_WAIT = ("--login-wait", "20")  # under the test driver's 30 s reply limit


def spread(ms: list[float]) -> str:
    return f"p50 {statistics.median(ms):.0f} ms ({min(ms):.0f}-{max(ms):.0f}, n={len(ms)})"


async def terminal_to_url(server: AuthServer, home: Path, env: dict[str, str]) -> float:
    """ms from starting `mcp-bridge login` to its URL line; the login is then finished."""
    started = time.perf_counter()
    async with terminal_login(home, server.mcp_url, env) as login:
        url, _ = await printed_url(login, server)
        waited = (time.perf_counter() - started) * 1000
        await open_in_headless_browser(url)
        assert await login.wait() == 0
    return waited


async def joining_run(server: AuthServer, home: Path) -> float:
    env = counting_tabs(home / "tabs")
    async with running_bridge(home, *LOGIN_WAIT, server.mcp_url, env=env) as bridge:
        await sign_in_round(bridge, echo_params("bench"))
        return await terminal_to_url(server, home, env)


async def plain_joining_run(server: AuthServer, home: Path) -> float:
    """ms until a client without URL elicitation hears of the round client's login."""
    env = counting_tabs(home / "tabs")
    args = (*LOGIN_WAIT, server.mcp_url)
    async with (
        running_bridge(home, *args, env=env) as rounds,
        running_bridge(home, *args, env=env) as plain,
    ):
        url = sign_in_url(server, await sign_in_round(rounds, echo_params("bench")))
        started = time.perf_counter()
        reply = await plain.request("tools/call", echo_params("bench", NO_URL_ELICITATION))
        waited = (time.perf_counter() - started) * 1000
        assert reply["result"]["isError"] is True, reply
        await open_in_headless_browser(url)
        return waited


async def main_async(runs: int) -> None:
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix="joined-login-bench-") as scratch:
        server = AuthServer.start(AuthServerModes(), Path(scratch))
        try:
            joined, alone, plain = [], [], []
            for run in range(runs):
                joined.append(await joining_run(server, Path(scratch) / f"joined-{run}"))
                home = Path(scratch) / f"alone-{run}"
                home.mkdir()
                alone.append(await terminal_to_url(server, home, counting_tabs(home / "tabs")))
                plain.append(await plain_joining_run(server, Path(scratch) / f"plain-{run}"))
            out.write(f"terminal joins the daemon's login -> URL printed: {spread(joined)}\n")
            out.write(f"terminal signs in alone -> URL printed: {spread(alone)}\n")
            ratio = statistics.median(joined) / statistics.median(alone)
            out.write(f"ratio (p50 joined / alone): {ratio:.2f}\n")
            out.write(f"plain client joins -> tool result naming the URL: {spread(plain)}\n")
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    asyncio.run(main_async(parser.parse_args().runs))


if __name__ == "__main__":
    main()
