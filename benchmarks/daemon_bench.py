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
import itertools
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from mcp import Client, StdioServerParameters
from relay_bench import (
    INITIALIZE,
    PipeClient,
    bench_server,
    percentile,
    piped_bridge,
    proc_mb,
    processes_under,
    row,
    time_calls,
)

from mcp_bridge.paths import bridge_paths
from mcp_bridge.protocol import (
    LATEST_MODERN_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
)
from mcp_bridge.remote.headers import ACCEPT_BOTH, JSON_BODY, modern_request_headers

SCRIPT = shutil.which("mcp-bridge", path=str(Path(sys.executable).parent))
WARM, COLD, NO_DAEMON = "warm daemon", "cold daemon", "--no-daemon"
MODES = (COLD, WARM, NO_DAEMON)  # in this order, the cold sample leaves the warm daemon
DISCOVER = {
    "_meta": {
        META_PROTOCOL_VERSION: LATEST_MODERN_VERSION,
        META_CLIENT_CAPABILITIES: {},
        META_CLIENT_INFO: {"name": "bench", "version": "1"},
    }
}
OPENINGS: dict[str, dict[str, Any]] = {"server/discover": DISCOVER, "initialize": INITIALIZE}
NOOP = {"name": "noop", "arguments": {}}
WORKERS = 16
REPLY_TIMEOUT_S = 30.0
EXIT_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 15.0
# Targets (issue 7) and the reference figure it quotes; mcp-remote is not run here.
HOP_TARGET_MS = 0.1
BRIDGE_TARGET_MS = 0.3
THROUGHPUT_TARGET = 0.95
TOTAL_5_TARGET_MB = 110.0
SHIM_TARGET_MB = 15.0
MCP_REMOTE_5_SERVERS_MB = 560.0


@dataclass(frozen=True, slots=True)
class Plan:
    runs: int  # spawn samples per cell
    calls: int  # sequential tools/call per path
    rounds: int  # turns the paths take (calls and throughput)
    throughput_calls: int  # per path, WORKERS at a time
    budget_s: float  # each part stops starting new rounds after this long


class BenchFailure(Exception):
    pass


# -- the processes under our MCP_BRIDGE_HOME ----------------------------------------------


def _alive(pid: int) -> bool:
    """Running, not a zombie (an exited daemon's new parent may be slow to reap it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):
        return False


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds the processes have used so far (10 ms ticks)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def children_running(script: bytes) -> list[int]:
    """Our child processes whose command line names `script` (the bench server)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat:
                parent = int(stat.read().rpartition(b")")[2].split()[1])
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and any(arg.endswith(script) for arg in argv):
            found.append(int(entry.name))
    return found


def end_processes_under(home: Path) -> int:
    """SIGTERM, then SIGKILL, every process started under `home`; how many there were."""
    pids = [pid for pid, _ in processes_under(home)]
    for signum in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
            time.sleep(0.02)
    return len(pids)


class Bench:
    """The bench server's URL, the temporary MCP_BRIDGE_HOME, and the daemon under it."""

    def __init__(self, url: str, home: Path, script: str) -> None:
        self.url = url
        self.home = home
        self.script = script
        self.env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": os.environ.get("HOME", str(home)),
            "MCP_BRIDGE_HOME": str(home),
        }
        self._serial = itertools.count(1)
        self.notes: list[str] = []

    def fresh_url(self) -> str:
        """A URL the bridge has never seen (the bench server ignores the query)."""
        return f"{self.url}?server={next(self._serial)}"

    def run_argv(self, mode: str) -> list[str]:
        return [self.script, "run", *(["--no-daemon"] if mode == NO_DAEMON else [])]

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def daemon_pids(self) -> list[int]:
        return [
            pid
            for pid, argv in processes_under(self.home)
            if b"daemon" in argv and b"stop" not in argv and b"status" not in argv
        ]

    async def stop_daemon(self) -> None:
        """`mcp-bridge daemon stop`, and wait until the process has exited."""
        pids = self.daemon_pids()
        if not pids:
            return
        stopper = await asyncio.create_subprocess_exec(
            self.script,
            "daemon",
            "stop",
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            await asyncio.wait_for(stopper.wait(), STOP_TIMEOUT_S)
        except TimeoutError:
            stopper.kill()
            await stopper.wait()
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while any(_alive(pid) for pid in pids):
            if time.monotonic() > deadline:
                self.note("a daemon outlived `mcp-bridge daemon stop` by 15 s: killed")
                for pid in pids:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                break
            await asyncio.sleep(0.01)

    def keeps_answers(self) -> bool:
        """Whether this build keeps the remote's answers (the answer cache) on disk."""
        directory = getattr(bridge_paths(self.env), "answer_cache_dir", None)
        return isinstance(directory, Path) and any(directory.glob("*.json"))


# -- 1. spawn -> first reply --------------------------------------------------------------


@dataclass
class Cell:
    firsts: list[float] = field(default_factory=list)
    exits: list[float] = field(default_factory=list)
    failures: int = 0


async def spawn_once(bench: Bench, url: str, method: str, mode: str) -> tuple[float, float]:
    """Seconds from spawn to the reply to `method`, and from stdin EOF to exit."""
    started = time.perf_counter()
    async with piped_bridge(url, bench.env, bench.run_argv(mode)) as bridge:
        request = bridge.request(method, OPENINGS[method])
        reply = await asyncio.wait_for(request, REPLY_TIMEOUT_S)
        first = time.perf_counter() - started
        if "result" not in reply:
            raise BenchFailure(f"{method} ({mode}): {str(reply.get('error'))[:120]}")
        exit_s = await asyncio.wait_for(bridge.close(), EXIT_TIMEOUT_S)
    return first, exit_s


async def sample(bench: Bench, cell: Cell, url: str, method: str, mode: str) -> None:
    if mode == COLD:
        await bench.stop_daemon()
    try:
        if mode == WARM and not bench.daemon_pids():
            bench.note("the warm daemon was gone before a warm sample (restarted, untimed)")
            await spawn_once(bench, bench.fresh_url(), method, WARM)
        before = bench.daemon_pids() if mode == WARM else []
        first, exit_s = await spawn_once(bench, url, method, mode)
    except (BenchFailure, TimeoutError, OSError, ValueError) as exc:
        cell.failures += 1
        bench.note(f"spawn failed: {type(exc).__name__}: {exc}")
        return
    if mode == WARM and bench.daemon_pids() != before:
        bench.note("a warm sample met a new daemon (someone stopped it); sample dropped")
        return
    cell.firsts.append(first)
    cell.exits.append(exit_s)


async def first_line_s(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawn to the first line of stdout (for the floors)."""
    started = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        *argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env
    )
    try:
        assert process.stdout is not None
        await asyncio.wait_for(process.stdout.readline(), REPLY_TIMEOUT_S)
        return time.perf_counter() - started
    finally:
        if process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
        await process.wait()


async def spawn_part(bench: Bench, plan: Plan) -> dict[tuple[str, str, bool], Cell]:
    print(
        f"\n1. spawn -> first reply, ms (median and p90 of {plan.runs}; "
        "`exit`: stdin EOF -> exit, median)"
    )
    floors = {
        "python start-up (python -c print)": [sys.executable, "-c", "print(1)"],
        "mcp-bridge --version (start-up + CLI imports)": [bench.script, "--version"],
    }
    for label, argv in floors.items():
        times = [await first_line_s(argv, bench.env) for _ in range(plan.runs)]
        print(
            f"  floor: {label:<46} {statistics.median(times) * 1000:6.1f}"
            f"  p90 {percentile(times, 0.9) * 1000:6.1f}"
        )

    # Cached: the same URL every time, once one answer to it went by (per method and mode).
    primed = {(method, mode): bench.fresh_url() for method in OPENINGS for mode in MODES}
    for (method, mode), url in primed.items():
        with contextlib.suppress(BenchFailure, TimeoutError, OSError, ValueError):
            await spawn_once(bench, url, method, mode)
    kinds = (False, True) if bench.keeps_answers() else (False,)
    cells = {
        (method, mode, cached): Cell() for method in OPENINGS for mode in MODES for cached in kinds
    }
    deadline = time.monotonic() + plan.budget_s
    for _ in range(plan.runs):
        if time.monotonic() > deadline:
            bench.note("part 1 ran out of time: fewer samples than asked")
            break
        for (method, mode, cached), cell in cells.items():
            url = primed[method, mode] if cached else bench.fresh_url()
            await sample(bench, cell, url, method, mode)

    print(f"  {'':<36}{'uncached (remote asked)':<27}cached (answers kept)")
    print(f"  {'':<36}{'median    p90   exit':<27}median    p90   exit")
    for method in OPENINGS:
        label = "initialize 2025-11-25" if method == "initialize" else method
        for mode in MODES:
            columns = [_cell_columns(cells.get((method, mode, cached))) for cached in (False, True)]
            print(f"  {label:<23}{mode:<13}{columns[0]:<27}{columns[1]}")
            label = ""
    if len(kinds) == 1:
        print("  cached: this build keeps no answers, so there is nothing to measure yet")
    return cells


def _cell_columns(cell: Cell | None) -> str:
    if cell is None or not cell.firsts:
        return "     —" if cell is None else f"failed {cell.failures}x"
    failed = f"  ({cell.failures} failed)" if cell.failures else ""
    return (
        f"{statistics.median(cell.firsts) * 1000:6.1f} {percentile(cell.firsts, 0.9) * 1000:6.1f}"
        f" {statistics.median(cell.exits) * 1000:6.1f}{failed}"
    )


# -- 2. and 3. per call: the hop, and 16 callers ------------------------------------------


async def call_noop(pipe: PipeClient) -> None:
    reply = await pipe.request("tools/call", NOOP)
    if "result" not in reply:
        raise BenchFailure(f"tools/call: {str(reply.get('error'))[:120]}")


class BareHttpClient:
    """PipeClient's counterpart over HTTP: one POST a call, the 2026-07-28 request the
    bridge itself sends this server (`_meta` in the body, the routing headers)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self._session = session
        self._url = url
        self._next_id = 0

    async def call_noop(self) -> None:
        self._next_id += 1
        params = {**NOOP, "_meta": DISCOVER["_meta"]}
        message = {"jsonrpc": "2.0", "id": self._next_id, "method": "tools/call", "params": params}
        headers = {"Accept": ACCEPT_BOTH, **JSON_BODY, **modern_request_headers(message)}
        async with self._session.post(self._url, data=json.dumps(message), headers=headers) as r:
            reply = await r.json()
        if "result" not in reply:
            raise BenchFailure(f"tools/call: {str(reply.get('error'))[:120]}")


async def sixteen_way(call: Callable[[], Awaitable[object]], count: int) -> tuple[int, float]:
    """WORKERS callers, each making count / WORKERS calls one after another."""
    each = max(1, count // WORKERS)

    async def caller() -> None:
        for _ in range(each):
            await call()

    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(WORKERS)))
    return each * WORKERS, time.perf_counter() - started


@dataclass
class CallFigures:
    p50_ms: dict[str, float] = field(default_factory=dict)
    rate: dict[str, float] = field(default_factory=dict)
    bridge_pids: dict[str, list[int]] = field(default_factory=dict)
    in_process_rss_mb: float = float("nan")

    def added_ms(self, path: str, baseline: str) -> float:
        return self.p50_ms[path] - self.p50_ms[baseline]

    def ratio(self, path: str, baseline: str) -> float:
        return self.rate[path] / self.rate[baseline]


DIRECT = "(a) SDK client over HTTP, direct"
BARE_DIRECT = "(a') bare HTTP client (aiohttp), direct"
IN_PROCESS = "(b) bare pipe client, run --no-daemon"
VIA_DAEMON = "(c) bare pipe client, via the daemon"
SDK_VIA_DAEMON = "(c') SDK client over stdio, via the daemon"
FLOOR = "(f) bare pipe client, leanest aiohttp relay"
FLOOR_RELAY = [sys.executable, str(Path(__file__).with_name("floor_relay.py"))]


Paths = dict[str, Callable[[], Awaitable[object]]]


async def call_parts(bench: Bench, plan: Plan) -> CallFigures:
    """Parts 2 and 3, over the same five paths, open side by side."""
    figures = CallFigures()
    url = bench.fresh_url()
    async with contextlib.AsyncExitStack() as stack, asyncio.timeout(plan.budget_s * 2 + 120):
        direct = await stack.enter_async_context(Client(url))
        http = await stack.enter_async_context(aiohttp.ClientSession())
        bare_direct = BareHttpClient(http, url)
        in_process = await stack.enter_async_context(
            piped_bridge(url, bench.env, bench.run_argv(NO_DAEMON))
        )
        via_daemon = await stack.enter_async_context(
            piped_bridge(url, bench.env, bench.run_argv(WARM))
        )
        floor = await stack.enter_async_context(piped_bridge(url, bench.env, FLOOR_RELAY))
        for pipe in (in_process, via_daemon, floor):
            await pipe.request("initialize", INITIALIZE)
            await pipe.notify("notifications/initialized")
        stdio = StdioServerParameters(command=bench.script, args=["run", url], env=bench.env)
        sdk_via_daemon = await stack.enter_async_context(Client(stdio))
        paths: Paths = {
            DIRECT: lambda: direct.call_tool("noop", {}),
            BARE_DIRECT: bare_direct.call_noop,
            IN_PROCESS: lambda: call_noop(in_process),
            VIA_DAEMON: lambda: call_noop(via_daemon),
            SDK_VIA_DAEMON: lambda: sdk_via_daemon.call_tool("noop", {}),
            FLOOR: lambda: call_noop(floor),
        }
        shims = [pid for pid, argv in processes_under(bench.home) if b"run" in argv]
        sdk_shims = [
            pid for pid in shims if pid not in (in_process.process.pid, via_daemon.process.pid)
        ]
        daemons = bench.daemon_pids()
        figures.bridge_pids = {
            IN_PROCESS: [in_process.process.pid],
            VIA_DAEMON: [via_daemon.process.pid, *daemons],
            SDK_VIA_DAEMON: [*sdk_shims, *daemons],
            FLOOR: [floor.process.pid],
        }
        for call in paths.values():
            await time_calls(call, 20)  # warm up
        await sequential_part(bench, plan, paths, figures)
        figures.in_process_rss_mb = proc_mb(in_process.process.pid, "VmRSS")
        await concurrent_part(bench, plan, paths, figures)
        for pipe in (in_process, via_daemon, floor):
            with contextlib.suppress(TimeoutError, OSError):
                await asyncio.wait_for(pipe.close(), EXIT_TIMEOUT_S)
    return figures


async def take_turns(
    bench: Bench,
    plan: Plan,
    paths: Paths,
    turn: Callable[[str, Callable[[], Awaitable[object]]], Awaitable[None]],
) -> None:
    """`turn(label, call)` for each path in turn, `plan.rounds` times, within the budget."""
    deadline = time.monotonic() + plan.budget_s
    for _ in range(plan.rounds):
        if time.monotonic() > deadline:
            bench.note("a part ran out of time: fewer turns than asked")
            return
        for label, call in paths.items():
            await turn(label, call)


async def sequential_part(bench: Bench, plan: Plan, paths: Paths, figures: CallFigures) -> None:
    per_turn = max(1, plan.calls // plan.rounds)
    print(
        f"\n2. tools/call noop, sequential: {per_turn} calls a turn, the paths taking "
        f"{plan.rounds} turns each"
    )
    samples: dict[str, list[float]] = {label: [] for label in paths}

    async def sequential(label: str, call: Callable[[], Awaitable[object]]) -> None:
        samples[label] += await time_calls(call, per_turn)

    await take_turns(bench, plan, paths, sequential)
    for label, timed in samples.items():
        figures.p50_ms[label], _ = row(label, timed)
    print(
        f"  the hop, (c) - (b):            {figures.added_ms(VIA_DAEMON, IN_PROCESS):+7.3f} "
        f"ms p50   (target <= +{HOP_TARGET_MS} ms)"
    )
    print(
        f"  the whole bridge, (c') - (a):  {figures.added_ms(SDK_VIA_DAEMON, DIRECT):+7.3f} "
        f"ms p50   (target <= +{BRIDGE_TARGET_MS} ms; SDK clients on both sides)"
    )
    print(
        f"  the whole bridge, (c) - (a'):  {figures.added_ms(VIA_DAEMON, BARE_DIRECT):+7.3f} "
        "ms p50   (bare clients on both sides)"
    )


async def concurrent_part(bench: Bench, plan: Plan, paths: Paths, figures: CallFigures) -> None:
    per_turn = max(WORKERS, plan.throughput_calls // plan.rounds)
    print(
        f"\n3. {WORKERS} concurrent callers, tools/call noop: {per_turn} calls a turn, "
        f"{plan.rounds} turns per path"
    )
    made = dict.fromkeys(paths, 0)
    spent = dict.fromkeys(paths, 0.0)
    server = children_running(b"bench_server.py")
    # CPU seconds by role: the clients (this process), the bridge's processes, the server.
    cpu = {label: [0.0, 0.0, 0.0] for label in paths}

    async def concurrent(label: str, call: Callable[[], Awaitable[object]]) -> None:
        bridge = figures.bridge_pids.get(label, [])
        before = (time.process_time(), cpu_s(bridge), cpu_s(server))
        count, elapsed = await sixteen_way(call, per_turn)
        after = (time.process_time(), cpu_s(bridge), cpu_s(server))
        made[label] += count
        spent[label] += elapsed
        for role in range(3):
            cpu[label][role] += after[role] - before[role]

    await take_turns(bench, plan, paths, concurrent)
    print(f"  {'':<44}{'calls/s':>9}   CPU ms a call: clients  bridge  server   sum")
    for label in paths:
        figures.rate[label] = made[label] / spent[label] if spent[label] else float("nan")
        clients, bridge, served = (seconds * 1000 / max(1, made[label]) for seconds in cpu[label])
        bridge_text = f"{bridge:6.2f}" if label in figures.bridge_pids else "     —"
        print(
            f"  {label:<44}{figures.rate[label]:9.0f}{'':18}{clients:6.2f}  {bridge_text}"
            f"  {served:6.2f}  {clients + bridge + served:5.2f}"
        )
    print(
        f"  via the daemon / direct:  {figures.ratio(SDK_VIA_DAEMON, DIRECT):.2f} (c'/a), "
        f"{figures.ratio(VIA_DAEMON, BARE_DIRECT):.2f} (c/a')   (target >= {THROUGHPUT_TARGET})"
    )
    print(f"  daemon / --no-daemon:     {figures.ratio(VIA_DAEMON, IN_PROCESS):.2f} (c/b)")
    print(
        f"  the floor: (f/a') {figures.ratio(FLOOR, BARE_DIRECT):.2f}, what any relay on "
        f"stdio reaches; the daemon / the floor (c/f) {figures.ratio(VIA_DAEMON, FLOOR):.2f}"
    )


# -- 4. memory --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Memory:
    servers: int
    daemon_rss: float
    daemon_hwm: float
    shims_rss: list[float]
    shims_hwm: list[float]
    pss_total: float  # daemon + shims, shared pages counted once

    @property
    def total_rss(self) -> float:
        return self.daemon_rss + sum(self.shims_rss)


async def memory_with(bench: Bench, servers: int) -> Memory:
    """A fresh daemon, one shim per server, each having done initialize and a call."""
    await bench.stop_daemon()
    async with contextlib.AsyncExitStack() as stack, asyncio.timeout(servers * 30 + 30):
        shims: list[PipeClient] = []
        for _ in range(servers):
            shim = await stack.enter_async_context(
                piped_bridge(bench.fresh_url(), bench.env, bench.run_argv(WARM))
            )
            await shim.request("initialize", INITIALIZE)
            await shim.notify("notifications/initialized")
            await call_noop(shim)
            shims.append(shim)
        daemons = bench.daemon_pids()
        if len(daemons) != 1:
            raise BenchFailure(f"{len(daemons)} daemons under the bench's home, not one")
        pids = [daemons[0], *(shim.process.pid for shim in shims)]
        memory = Memory(
            servers=servers,
            daemon_rss=proc_mb(pids[0], "VmRSS"),
            daemon_hwm=proc_mb(pids[0], "VmHWM"),
            shims_rss=[proc_mb(pid, "VmRSS") for pid in pids[1:]],
            shims_hwm=[proc_mb(pid, "VmHWM") for pid in pids[1:]],
            pss_total=sum(proc_mb(pid, "Pss", "smaps_rollup") for pid in pids),
        )
        await asyncio.gather(
            *(asyncio.wait_for(shim.close(), EXIT_TIMEOUT_S) for shim in shims),
            return_exceptions=True,
        )
    return memory


async def memory_part(bench: Bench, in_process_rss_mb: float) -> list[Memory]:
    print("\n4. memory, MB: a fresh daemon, one shim per server (initialize + tools/call)")
    print(f"  {'':<12}{'daemon RSS (peak)':<20}{'shim RSS max (peak)':<22}total RSS  total PSS")
    figures = []
    for servers in (5, 20):
        memory = await memory_with(bench, servers)
        figures.append(memory)
        print(
            f"  {servers:>2} servers  {memory.daemon_rss:6.1f} ({memory.daemon_hwm:5.1f})"
            f"      {max(memory.shims_rss):5.1f} ({max(memory.shims_hwm):5.1f})"
            f"         {memory.total_rss:7.1f}    {memory.pss_total:7.1f}"
        )
    print(
        f"  targets: 5 servers <= {TOTAL_5_TARGET_MB:.0f} MB in all (RSS); "
        f"a shim <= {SHIM_TARGET_MB:.0f} MB"
    )
    print(
        f"  reference: mcp-remote, 5 servers: {MCP_REMOTE_5_SERVERS_MB:.0f} MB (issue 7's "
        "figure, not run here)"
    )
    print(
        f"  reference: run --no-daemon after part 2: {in_process_rss_mb:.1f} MB RSS, "
        f"x 5 = {in_process_rss_mb * 5:.0f} MB"
    )
    return figures


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
