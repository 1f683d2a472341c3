"""How soon a client hears that it must sign in, side by side: a 2026-07-28 client that
declares URL-mode elicitation (an `input_required` round, answered once the authorization
URL is known) and one that does not (a tool result naming the URL, after `--login-wait`, 20 s here).
Against the demo AS and its MCP server, through a real `mcp-bridge run`, with the daemon and
`--no-daemon`; each run from a fresh home (so each registers a client and starts a login).
Run from the repository root: `python -m benchmarks.sign_in_round_bench [--runs N]`.

Printed per mode: time from sending the tool call to the round (median of N, and its
spread), the same for the client without URL elicitation (one run: it is the login wait),
and, for the rounds, the time from following the URL (a stdlib redirect follower) to the
retry's tool result.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from mcp_bridge.demo.auth_modes import AuthServerModes
from tests.fixtures.auth_server import AuthServer
from tests.fixtures.bridge_process import running_bridge
from tests.fixtures.client_sign_in import (
    NO_BROWSER,
    echo_params,
    open_in_headless_browser,
    retry_params,
    sign_in_url,
)
from tests.fixtures.mcp_servers import text_of

LOGIN_WAIT_S = 20.0  # under the test driver's 30 s reply limit (the default is 30)


async def round_run(server: AuthServer, home: Path, flags: tuple[str, ...]) -> tuple[float, float]:
    """(ms to the round, ms from following the URL to the retry's result)."""
    args = (*flags, "--login-wait", str(LOGIN_WAIT_S), server.mcp_url)
    async with running_bridge(home, *args, env=NO_BROWSER) as bridge:
        first = echo_params("bench")
        started = time.perf_counter()
        reply = await bridge.request("tools/call", first)
        to_round = time.perf_counter() - started
        answered: dict[str, Any] = reply["result"]
        assert answered["resultType"] == "input_required", reply
        started = time.perf_counter()
        await open_in_headless_browser(sign_in_url(server, answered))
        retried = await bridge.request("tools/call", retry_params(first, answered, "accept"))
        assert text_of(retried) == "bench"
        return to_round * 1000, (time.perf_counter() - started) * 1000


async def waiting_run(server: AuthServer, home: Path, flags: tuple[str, ...]) -> float:
    """ms until a client without URL elicitation hears of the sign-in."""
    args = (*flags, "--login-wait", str(LOGIN_WAIT_S), server.mcp_url)
    async with running_bridge(home, *args, env=NO_BROWSER) as bridge:
        started = time.perf_counter()
        reply = await bridge.request("tools/call", echo_params("bench", {}))
        assert reply["result"]["isError"] is True, reply
        return (time.perf_counter() - started) * 1000


def spread(samples: list[float]) -> str:
    return (
        f"p50 {statistics.median(samples):.0f} ms "
        f"(min {min(samples):.0f}, max {max(samples):.0f}, n={len(samples)})"
    )


async def main_async(runs: int) -> None:
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix="sign-in-bench-") as scratch:
        server = AuthServer.start(AuthServerModes(), Path(scratch))
        try:
            for name, flags in (("daemon", ()), ("--no-daemon", ("--no-daemon",))):
                rounds, logins = [], []
                for run in range(runs):
                    home = Path(scratch) / f"{name}-{run}"
                    to_round, login = await round_run(server, home, flags)
                    rounds.append(to_round)
                    logins.append(login)
                waited = await waiting_run(server, Path(scratch) / f"{name}-wait", flags)
                out.write(f"{name}: URL elicitation -> input_required round: {spread(rounds)}\n")
                out.write(f"{name}: no URL elicitation -> tool result: {waited:.0f} ms\n")
                out.write(
                    f"{name}: ratio (p50 round / wait): {statistics.median(rounds) / waited:.3f}\n"
                )
                out.write(f"{name}: follow the URL -> retry's result: {spread(logins)}\n")
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    asyncio.run(main_async(parser.parse_args().runs))


if __name__ == "__main__":
    main()
