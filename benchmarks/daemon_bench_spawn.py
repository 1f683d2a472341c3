"""daemon_bench.py's part 1: spawn -> first reply to `server/discover` and to `initialize`,
with the daemon warm, cold and `--no-daemon`, against the floors (python start-up,
`mcp-bridge --version`)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field

from daemon_bench_harness import (
    COLD,
    EXIT_TIMEOUT_S,
    MODES,
    OPENINGS,
    REPLY_TIMEOUT_S,
    WARM,
    Bench,
    BenchFailure,
    Plan,
)
from relay_bench import percentile, piped_bridge

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
