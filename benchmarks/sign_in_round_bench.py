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

`--never-401`: the server never answers 401 and only its protected-resource metadata names
the authorization server (the demo's `auth_required=False`): the login starts from the tool
call's headers, not from a challenge. The client's opening goes first there, without a
token, so that the bridge has read that metadata when the tool call comes.
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
from tests.fixtures.bridge_process import BridgeProcess, running_bridge
from tests.fixtures.client_sign_in import (
    NO_BROWSER,
    echo_params,
    open_in_headless_browser,
    retry_params,
    sign_in_url,
)
from tests.fixtures.mcp_servers import modern_meta, text_of

LOGIN_WAIT_S = 20.0  # under the test driver's 30 s reply limit (the default is 30)


async def opening(bridge: BridgeProcess, never_401: bool) -> None:
    """A server that never answers 401 is known to want OAuth once the bridge has read its
    metadata, which the client's first request has it do."""
    if never_401:
        assert "result" in await bridge.request("server/discover", {"_meta": modern_meta()})


async def round_run(
    server: AuthServer, home: Path, flags: tuple[str, ...], never_401: bool
) -> tuple[float, float]:
    """(ms to the round, ms from following the URL to the retry's result)."""
    args = (*flags, "--login-wait", str(LOGIN_WAIT_S), server.mcp_url)
    async with running_bridge(home, *args, env=NO_BROWSER) as bridge:
        await opening(bridge, never_401)
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


async def waiting_run(
    server: AuthServer, home: Path, flags: tuple[str, ...], never_401: bool
) -> float:
    """ms until a client without URL elicitation hears of the sign-in."""
    args = (*flags, "--login-wait", str(LOGIN_WAIT_S), server.mcp_url)
    async with running_bridge(home, *args, env=NO_BROWSER) as bridge:
        await opening(bridge, never_401)
        started = time.perf_counter()
        reply = await bridge.request("tools/call", echo_params("bench", {}))
        assert reply["result"]["isError"] is True, reply
        return (time.perf_counter() - started) * 1000


def spread(samples: list[float]) -> str:
    return (
        f"p50 {statistics.median(samples):.0f} ms "
        f"(min {min(samples):.0f}, max {max(samples):.0f}, n={len(samples)})"
    )


async def main_async(runs: int, never_401: bool) -> None:
    out = sys.stdout
    with tempfile.TemporaryDirectory(prefix="sign-in-bench-") as scratch:
        modes = AuthServerModes(auth_required=not never_401)
        server = AuthServer.start(modes, Path(scratch))
        try:
            for name, flags in (("daemon", ()), ("--no-daemon", ("--no-daemon",))):
                rounds, logins = [], []
                for run in range(runs):
                    home = Path(scratch) / f"{name}-{run}"
                    to_round, login = await round_run(server, home, flags, never_401)
                    rounds.append(to_round)
                    logins.append(login)
                wait_home = Path(scratch) / f"{name}-wait"
                waited = await waiting_run(server, wait_home, flags, never_401)
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
    parser.add_argument(
        "--never-401", action="store_true", help="a server that never answers 401 (see above)"
    )
    args = parser.parse_args()
    asyncio.run(main_async(args.runs, args.never_401))


if __name__ == "__main__":
    main()
