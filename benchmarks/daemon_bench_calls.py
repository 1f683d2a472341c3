"""daemon_bench.py's parts 2 and 3: sequential tools/call (the hop) and 16 concurrent
callers, over the same paths side by side (direct, --no-daemon, via the daemon, the
leanest relay)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from daemon_bench_harness import (
    BRIDGE_TARGET_MS,
    DISCOVER,
    EXIT_TIMEOUT_S,
    HOP_TARGET_MS,
    NO_DAEMON,
    NOOP,
    THROUGHPUT_TARGET,
    WARM,
    WORKERS,
    Bench,
    BenchFailure,
    Plan,
    children_running,
    cpu_s,
)
from mcp import Client, StdioServerParameters
from relay_bench import (
    INITIALIZE,
    PipeClient,
    piped_bridge,
    proc_mb,
    processes_under,
    row,
    time_calls,
)

from mcp_bridge.remote.headers import ACCEPT_BOTH, JSON_BODY, modern_request_headers

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
