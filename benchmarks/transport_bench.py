"""Daemon transport benchmark: the Unix socket and loopback TCP with its mutual proof
(what Windows uses), side by side in one run, with `run --no-daemon` as the floor.

Prints figures; asserts nothing. The machine may be shared and noisy: read the ratios.

    .venv/bin/python benchmarks/transport_bench.py [--quick]

1. spawn -> reply to `initialize` through a warm daemon, per transport: a URL the bridge
   has not seen each time, so the shim has to reach the daemon (a cached answer would
   come from the shim alone). The TCP shim also reads the endpoint file, checks the
   daemon's pid, imports hmac and has the daemon prove itself before its hello.
2. connect + hello + reply, what every shim does before its first message: `status`
   asked in this process, p50/p90 per transport. TCP's extra round trip (the challenge and
   its answer) and its two HMACs each way show here.
3. sequential tools/call noop through a shim: p50/p99 per transport, and the hop over
   `--no-daemon`. The paths take turns in rounds, so drift falls on all of them.
4. 16 concurrent callers: calls/s per transport, and TCP / Unix.

Each transport's daemon has its own MCP_BRIDGE_HOME; every process under them is ended
on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from daemon_bench_calls import call_noop, sixteen_way
from daemon_bench_harness import REPLY_TIMEOUT_S, SCRIPT, WORKERS, end_processes_under
from relay_bench import INITIALIZE, PipeClient, bench_server, percentile, piped_bridge, row

from mcp_bridge.daemon.transport import TRANSPORT_ENV
from mcp_bridge.paths import bridge_paths
from mcp_bridge.shim.connection import ask_daemon

TRANSPORTS = ("unix", "tcp")
IN_PROCESS = "--no-daemon (floor)"


def env_for(home: Path, transport: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", os.defpath),
        "HOME": str(home),
        "MCP_BRIDGE_HOME": str(home),
        TRANSPORT_ENV: transport,
    }


async def spawn_to_initialize(url: str, env: dict[str, str]) -> float:
    """Seconds from spawning a shim for `url` to its reply to `initialize`."""
    started = time.perf_counter()
    async with piped_bridge(url, env, [str(SCRIPT), "run"]) as bridge:
        reply = await asyncio.wait_for(bridge.request("initialize", INITIALIZE), REPLY_TIMEOUT_S)
        elapsed = time.perf_counter() - started
        if "result" not in reply:
            raise SystemExit(f"initialize failed: {reply}")
        await bridge.close()
    return elapsed


def connect_and_hello(home: Path, transport: str, runs: int) -> list[float]:
    """Seconds each for `runs` connections to the daemon under `home`: connect (and, on
    TCP, the proof), the `status` hello, its reply."""
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(home)})
    before = os.environ.get(TRANSPORT_ENV)
    os.environ[TRANSPORT_ENV] = transport  # read by the transport choice at each connect
    try:
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            ask_daemon(paths, "status")
            times.append(time.perf_counter() - started)
        return times
    finally:
        if before is None:
            del os.environ[TRANSPORT_ENV]
        else:
            os.environ[TRANSPORT_ENV] = before


def calling(pipe: PipeClient) -> Callable[[], Awaitable[None]]:
    return lambda: call_noop(pipe)


async def run_all(url: str, homes: dict[str, Path], runs: int, calls: int, rounds: int) -> None:
    serial = iter(range(1, 10**9))

    def fresh() -> str:
        return f"{url}?server={next(serial)}"

    envs = {transport: env_for(homes[transport], transport) for transport in TRANSPORTS}
    print(f"server: {url}; bridge: {SCRIPT}")
    print(f"\n1. spawn -> initialize reply, warm daemon, uncached, ms (median / p90 of {runs})")
    for transport in TRANSPORTS:  # start each daemon, untimed
        await spawn_to_initialize(fresh(), envs[transport])
    spawn: dict[str, list[float]] = {transport: [] for transport in TRANSPORTS}
    for _ in range(runs):
        for transport in TRANSPORTS:
            spawn[transport].append(await spawn_to_initialize(fresh(), envs[transport]))
    for transport, times in spawn.items():
        print(
            f"  {transport:<6} {statistics.median(times) * 1000:7.1f} "
            f"{percentile(times, 0.9) * 1000:7.1f}"
        )

    print(f"\n2. connect + hello + reply (`status`), ms (median / p90 of {runs * 20})")
    hellos: dict[str, list[float]] = {transport: [] for transport in TRANSPORTS}
    for _ in range(runs):  # in turns, so drift falls on both
        for transport in TRANSPORTS:
            hellos[transport] += connect_and_hello(homes[transport], transport, 20)
    for transport, times in hellos.items():
        print(
            f"  {transport:<6} {statistics.median(times) * 1000:7.3f} "
            f"{percentile(times, 0.9) * 1000:7.3f}"
        )
    extra = statistics.median(hellos["tcp"]) - statistics.median(hellos["unix"])
    print(f"  tcp - unix: {extra * 1000:+.3f} ms p50")

    async with contextlib.AsyncExitStack() as stack:
        pipes: dict[str, PipeClient] = {}
        argv = {IN_PROCESS: [str(SCRIPT), "run", "--no-daemon"]}
        for transport in TRANSPORTS:
            argv[transport] = [str(SCRIPT), "run"]
        shared = fresh()
        for label, command in argv.items():
            env = envs.get(label, envs["unix"])
            pipe = await stack.enter_async_context(piped_bridge(shared, env, command))
            await pipe.request("initialize", INITIALIZE)
            await pipe.notify("notifications/initialized")
            pipes[label] = pipe
        paths = {label: calling(pipe) for label, pipe in pipes.items()}
        for call in paths.values():
            for _ in range(20):
                await call()  # warm up

        per_turn = max(1, calls // rounds)
        print(f"\n3. tools/call noop, sequential: {per_turn} calls a turn, {rounds} turns a path")
        samples: dict[str, list[float]] = {label: [] for label in paths}
        for _ in range(rounds):
            for label, call in paths.items():
                for _ in range(per_turn):
                    started = time.perf_counter()
                    await call()
                    samples[label].append(time.perf_counter() - started)
        p50 = {label: row(label, timed)[0] for label, timed in samples.items()}
        for transport in TRANSPORTS:
            print(f"  the hop, {transport}: {p50[transport] - p50[IN_PROCESS]:+.3f} ms p50")
        print(f"  tcp - unix: {p50['tcp'] - p50['unix']:+.3f} ms p50")

        per_turn = max(WORKERS, calls * 2 // rounds)
        print(f"\n4. {WORKERS} concurrent callers: {per_turn} calls a turn, {rounds} turns a path")
        made = dict.fromkeys(paths, 0)
        spent = dict.fromkeys(paths, 0.0)
        for _ in range(rounds):
            for label, call in paths.items():
                count, elapsed = await sixteen_way(call, per_turn)
                made[label] += count
                spent[label] += elapsed
        rate = {label: made[label] / spent[label] for label in paths}
        for label in paths:
            print(f"  {label:<44}{rate[label]:9.0f} calls/s")
        print(f"  tcp / unix: {rate['tcp'] / rate['unix']:.2f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short run")
    options = parser.parse_args()
    if SCRIPT is None:
        raise SystemExit(f"no mcp-bridge console script next to {sys.executable}")
    runs, calls, rounds = (5, 400, 4) if options.quick else (15, 2000, 10)
    root = Path(tempfile.mkdtemp(prefix="transport-bench-"))
    homes = {transport: root / transport for transport in TRANSPORTS}
    try:
        with bench_server("--json") as url:
            asyncio.run(run_all(url, homes, runs, calls, rounds))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for home in homes.values():
            end_processes_under(home)
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
