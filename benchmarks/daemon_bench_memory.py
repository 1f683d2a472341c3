"""daemon_bench.py's part 4: the daemon's and its shims' memory with 5 and with 20 servers
connected."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from daemon_bench_calls import call_noop
from daemon_bench_harness import (
    EXIT_TIMEOUT_S,
    MCP_REMOTE_5_SERVERS_MB,
    SHIM_TARGET_MB,
    TOTAL_5_TARGET_MB,
    WARM,
    Bench,
    BenchFailure,
)
from relay_bench import INITIALIZE, PipeClient, piped_bridge, proc_mb

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
