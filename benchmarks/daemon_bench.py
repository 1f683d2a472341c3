"""Daemon benchmark: `mcp-bridge run` through the per-user daemon, side by side with
`run --no-daemon` and a direct client, in the same run (issue 7, "Measure").

Prints figures; asserts nothing. The machine may be shared and noisy: read the ratios.

    .venv/bin/python benchmarks/daemon_bench.py [--runs 15] [--quick]

1. spawn -> first reply to `server/discover` and to `initialize` (2025-11-25), median and
   p90 of N, with the daemon warm (running), cold (stopped before each sample: the shim
   starts it) and `--no-daemon`. Spawned as a host does: the console script, an
   environment of PATH, HOME and MCP_BRIDGE_HOME only, stdin/stdout pipes, timed from
   Popen to the first stdout line. "uncached": a URL the bridge has never seen, so the
   remote is asked; "cached": a URL whose answers the bridge has kept (blank while the
   build keeps none). Floors: python start-up, `mcp-bridge --version`.
2. the hop: p50/p99 of sequential tools/call, (a) a direct SDK client over HTTP
   (relay_bench.py's baseline) and (a') a bare aiohttp client posting what the bridge
   posts, (b) a bare pipe client through `run --no-daemon`, (c) the same through the
   daemon, (c') the SDK's stdio client through the daemon. The hop is (c) - (b); the whole
   bridge (c') - (a), and (c) - (a'): each pair has the same client library on both sides.
   (f) is the floor: the same pipe client through floor_relay.py, the leanest relay on
   stdio (aiohttp, no MCP logic), so (c) - (f) is what the bridge's logic and hop cost.
   The paths take turns in rounds, so drift on a shared machine falls on all of them.
3. 16 concurrent callers: calls/s of the same paths, taking turns likewise, and the CPU a
   call costs the clients, the bridge's processes and the server (2 cores: CPU is the
   ceiling).
4. memory: the daemon's and its shims' RSS with 5 and with 20 servers connected, next to
   mcp-remote's figure from the issue (not run here).

Every server is the one bench server: a distinct query string makes a distinct URL, and a
distinct URL is a distinct server to the bridge (its own HTTP session, its own answers).
Every process started under the temporary MCP_BRIDGE_HOME is ended on exit, Ctrl-C and
SIGTERM included (found by that variable in /proc/<pid>/environ: the daemon is not ours
to wait for, it runs in a session of its own).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

from daemon_bench_calls import (
    BARE_DIRECT,
    DIRECT,
    FLOOR,
    IN_PROCESS,
    SDK_VIA_DAEMON,
    VIA_DAEMON,
    CallFigures,
    call_parts,
)
from daemon_bench_harness import (
    BRIDGE_TARGET_MS,
    COLD,
    HOP_TARGET_MS,
    NO_DAEMON,
    OPENINGS,
    SCRIPT,
    THROUGHPUT_TARGET,
    WARM,
    Bench,
    Plan,
    end_processes_under,
)
from daemon_bench_memory import Memory, memory_part
from daemon_bench_spawn import Cell, spawn_part
from relay_bench import bench_server

from mcp_bridge.paths import bridge_paths

# -- the run ------------------------------------------------------------------------------


async def run_all(bench: Bench, plan: Plan) -> None:
    print(
        f"server: {bench.url} --json ({os.cpu_count()} cores; load {_load()}); "
        f"bridge: {bench.script}; MCP_BRIDGE_HOME={bench.home}"
    )
    started = time.monotonic()
    cells: dict[tuple[str, str, bool], Cell] = {}
    calls = CallFigures()
    memory: list[Memory] = []

    async def part1() -> None:
        cells.update(await spawn_part(bench, plan))

    async def part23() -> None:
        nonlocal calls
        calls = await call_parts(bench, plan)

    async def part4() -> None:
        memory.extend(await memory_part(bench, calls.in_process_rss_mb))

    for name, part in (("1", part1), ("2-3", part23), ("4", part4)):
        try:
            await part()
        except Exception as exc:  # a part that breaks is reported; the others still run
            print(f"  part {name} failed: {type(exc).__name__}: {exc}")
    with contextlib.suppress(OSError):
        await bench.stop_daemon()
    _summary(cells, calls, memory)
    print(f"\n({time.monotonic() - started:.0f} s; load {_load()})")
    for text in bench.notes:
        print(f"note: {text}")


def _summary(
    cells: dict[tuple[str, str, bool], Cell], calls: CallFigures, memory: list[Memory]
) -> None:
    print("\nsummary")

    def median_ms(method: str, mode: str) -> str:
        cell = cells.get((method, mode, False))
        if cell is None or not cell.firsts:
            return "—"
        return f"{statistics.median(cell.firsts) * 1000:.0f} ms"

    for method in OPENINGS:
        print(
            f"  spawn -> {method}, uncached: warm {median_ms(method, WARM)}, "
            f"cold {median_ms(method, COLD)}, --no-daemon {median_ms(method, NO_DAEMON)}"
        )
    if calls.p50_ms:
        print(
            f"  p50 added: hop {calls.added_ms(VIA_DAEMON, IN_PROCESS):+.3f} ms "
            f"(<= +{HOP_TARGET_MS}); whole bridge {calls.added_ms(SDK_VIA_DAEMON, DIRECT):+.3f} "
            f"ms SDK-SDK, {calls.added_ms(VIA_DAEMON, BARE_DIRECT):+.3f} ms bare-bare "
            f"(<= +{BRIDGE_TARGET_MS})"
        )
    if calls.rate:
        print(
            f"  16-way via the daemon / direct: {calls.ratio(SDK_VIA_DAEMON, DIRECT):.2f} SDK-SDK, "
            f"{calls.ratio(VIA_DAEMON, BARE_DIRECT):.2f} bare-bare (>= {THROUGHPUT_TARGET}); "
            f"the leanest relay {calls.ratio(FLOOR, BARE_DIRECT):.2f}"
        )
    for figures in memory:
        print(
            f"  {figures.servers} servers: {figures.total_rss:.0f} MB RSS in all "
            f"(daemon {figures.daemon_rss:.0f} + {figures.servers} shims of "
            f"<= {max(figures.shims_rss):.1f}); PSS {figures.pss_total:.0f} MB"
        )


def _load() -> str:
    with open("/proc/loadavg") as loadavg:
        return " ".join(loadavg.read().split()[:3])


def _terminated(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # the same clean-up as Ctrl-C


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, help="spawn samples per cell (default 15)")
    parser.add_argument("--quick", action="store_true", help="a short run (under 2 minutes)")
    options = parser.parse_args()
    if SCRIPT is None:
        raise SystemExit(f"no mcp-bridge console script next to {sys.executable}")
    if options.quick:
        plan = Plan(runs=5, calls=400, rounds=4, throughput_calls=960, budget_s=40.0)
    else:
        plan = Plan(runs=15, calls=2000, rounds=10, throughput_calls=4000, budget_s=300.0)
    if options.runs:
        plan = Plan(options.runs, plan.calls, plan.rounds, plan.throughput_calls, plan.budget_s)
    home = Path(tempfile.mkdtemp(prefix="daemon-bench-"))
    signal.signal(signal.SIGTERM, _terminated)
    try:
        with bench_server("--json") as url:
            asyncio.run(run_all(Bench(url, home, SCRIPT), plan))
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        left = end_processes_under(home)
        if left:
            print(f"(ended {left} process(es) left under {home})", file=sys.stderr)
        _report_log_problems(home)
        shutil.rmtree(home, ignore_errors=True)
    return 0


def _report_log_problems(home: Path) -> None:
    """The warnings and errors the bridge logged during the run (a few, once each)."""
    seen: dict[str, int] = {}
    for log in sorted(bridge_paths({"MCP_BRIDGE_HOME": str(home)}).log_dir.glob("*.log")):
        with contextlib.suppress(OSError), open(log, errors="replace") as lines:
            for line in lines:
                if " WARNING " in line or " ERROR " in line:
                    text = line.split(" ", 2)[-1].strip()[:160]
                    seen[text] = seen.get(text, 0) + 1
    for text, count in list(seen.items())[:6]:
        print(f"log: {count}x {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
