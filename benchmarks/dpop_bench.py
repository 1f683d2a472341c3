"""What DPoP adds to each request, side by side with a bearer request in one run. Run from
the repository root: `python -m benchmarks.dpop_bench [--calls N] [--round-trips N]`.

1. `build_proof` alone (ES256 signature, JSON, base64url): p50 and p90;
2. the provider's `headers(method, url)` with a valid token, a logged-in DPoP-bound one
   (a fresh proof each call) against a Bearer one (a mapping built once): p50 and p90 of
   each call, and the difference, which is what a request pays for DPoP on our side;
3. whole `tools/call` round trips through the bridge's transport to the fixture MCP server,
   Bearer against DPoP: these include the server's own proof check (PyJWT), so they bound
   the cost from above rather than measure ours.

The target (issue 10): at most 0.2 ms p50 added per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from mcp_bridge.auth.dpop import DpopKey, build_proof
from mcp_bridge.auth.provider import OAuthCredentials
from mcp_bridge.demo.auth_modes import AuthServerModes
from tests.fixtures.auth_server import AuthServer
from tests.fixtures.oauth_client import FOLLOWER, BridgeClient, fresh_credentials

TARGET_MS = 0.2


def quantiles_us(samples_ns: list[int]) -> tuple[float, float]:
    """p50 and p90 in microseconds."""
    cuts = statistics.quantiles(samples_ns, n=10)
    return statistics.median(samples_ns) / 1000, cuts[-1] / 1000


def proof_build_ns(calls: int) -> list[int]:
    key = DpopKey.generate()
    samples = []
    for index in range(calls):
        started = time.perf_counter_ns()
        build_proof(key, "POST", "https://mcp.example.com/mcp", time.time(), str(index), "n", "t")
        samples.append(time.perf_counter_ns() - started)
    return samples


async def headers_ns(credentials: OAuthCredentials, calls: int) -> list[int]:
    url = credentials.mcp_url
    await credentials.headers("POST", url)  # warm: the token is loaded, the key read
    samples = []
    for _ in range(calls):
        started = time.perf_counter_ns()
        await credentials.headers("POST", url)
        samples.append(time.perf_counter_ns() - started)
    return samples


async def round_trips_ns(credentials: OAuthCredentials, count: int) -> list[int]:
    client = BridgeClient(credentials)
    try:
        assert "result" in await client.start()
        await client.call("echo", "warm")
        samples = []
        for _ in range(count):
            started = time.perf_counter_ns()
            await client.call("echo", "hi")
            samples.append(time.perf_counter_ns() - started)
        return samples
    finally:
        await client.aclose()


async def measure(server: AuthServer, calls: int, trips: int) -> tuple[list[int], list[int]]:
    """Log in to `server`, then time its headers and its round trips."""
    async with fresh_credentials(server.mcp_url) as credentials:
        await credentials.login()
        return await headers_ns(credentials, calls), await round_trips_ns(credentials, trips)


def line(name: str, samples_ns: list[int]) -> str:
    p50, p90 = quantiles_us(samples_ns)
    return f"{name}: p50 {p50:.1f} us, p90 {p90:.1f} us (n={len(samples_ns)})"


async def main_async(calls: int, trips: int) -> None:
    os.environ["BROWSER"] = str(FOLLOWER)
    with tempfile.TemporaryDirectory(prefix="dpop-bench-") as logs:
        bearer_server = AuthServer.start(AuthServerModes(), Path(logs))
        dpop_server = AuthServer.start(AuthServerModes(dpop=True), Path(logs))
        try:
            bearer_headers, bearer_trips = await measure(bearer_server, calls, trips)
            dpop_headers, dpop_trips = await measure(dpop_server, calls, trips)
        finally:
            bearer_server.stop()
            dpop_server.stop()
    proofs = proof_build_ns(calls)
    out = sys.stdout
    out.write(line("build_proof alone", proofs) + "\n")
    out.write(line("headers(), Bearer token", bearer_headers) + "\n")
    out.write(line("headers(), DPoP-bound token", dpop_headers) + "\n")
    added_ms = (statistics.median(dpop_headers) - statistics.median(bearer_headers)) / 1e6
    verdict = "within" if added_ms <= TARGET_MS else "OVER"
    out.write(
        f"added per request by DPoP (headers() p50 difference): {added_ms * 1000:.1f} us = "
        f"{added_ms:.3f} ms, {verdict} the {TARGET_MS} ms target\n"
    )
    out.write(line("tools/call round trip, Bearer", bearer_trips) + "\n")
    out.write(line("tools/call round trip, DPoP (server checks the proof too)", dpop_trips) + "\n")
    ratio = statistics.median(dpop_trips) / statistics.median(bearer_trips)
    out.write(f"round trip ratio DPoP/Bearer (p50): {ratio:.2f}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--round-trips", type=int, default=300)
    args = parser.parse_args()
    asyncio.run(main_async(args.calls, args.round_trips))


if __name__ == "__main__":
    main()
