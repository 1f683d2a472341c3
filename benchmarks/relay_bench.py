"""Relay benchmark: `mcp-bridge run` against a direct SDK HTTP client, side by side.

Prints figures; asserts nothing. Both paths call the same local server in the same run, so
the ratios hold on a noisy shared machine even when the absolute numbers wander.

    .venv/bin/python benchmarks/relay_bench.py [--calls 500]

Measured: spawn -> initialize reply (median of 10), exit after stdin EOF, tools/call p50
and p99 over N sequential calls (direct SDK client over HTTP; the same SDK client over
stdio through the bridge; a bare pipe client through the bridge), 16 concurrent 200 ms
calls through the bridge, a 20 MB result, and the bridge's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

ROOT = Path(__file__).resolve().parent.parent
# The engine in this process: what this bench compares with a direct client. The daemon's
# hop and start-up are daemon_bench.py's job (and this way no daemon is left running).
BRIDGE = [sys.executable, "-m", "mcp_bridge", "run", "--no-daemon"]


@contextlib.contextmanager
def bench_server(*args: str) -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "benchmarks" / "bench_server.py"), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().decode()
        if not line.startswith("READY "):
            raise SystemExit("the benchmark server did not start")
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(10)


class PipeClient:
    """The thinnest possible stdio client: JSON lines over the bridge's pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        assert process.stdin is not None
        assert process.stdout is not None
        self.process = process
        self._stdin = process.stdin
        self._stdout = process.stdout
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        line = json.dumps({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        self._stdin.write(line.encode() + b"\n")
        await self._stdin.drain()
        return await future

    async def notify(self, method: str) -> None:
        self._stdin.write(json.dumps({"jsonrpc": "2.0", "method": method}).encode() + b"\n")
        await self._stdin.drain()

    async def _read(self) -> None:
        while line := await self._stdout.readline():
            message = json.loads(line)
            future = self._waiting.pop(message.get("id"), None)
            if future is not None and not future.done():
                future.set_result(message)

    async def close(self) -> float:
        """Close stdin; seconds until the bridge exited."""
        started = time.perf_counter()
        self._stdin.close()
        await self.process.wait()
        elapsed = time.perf_counter() - started
        self._reader.cancel()
        return elapsed


INITIALIZE = {
    "protocolVersion": "2025-11-25",
    "capabilities": {},
    "clientInfo": {"name": "bench", "version": "1"},
}


@contextlib.asynccontextmanager
async def piped_bridge(
    url: str, env: dict[str, str], bridge: Sequence[str] = BRIDGE
) -> AsyncIterator[PipeClient]:
    """`bridge` (the command line before the URL) started on pipes, with a PipeClient."""
    process = await asyncio.create_subprocess_exec(
        *bridge, url, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, limit=2**27
    )
    client = PipeClient(process)
    try:
        yield client
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def proc_mb(pid: int, field: str, file: str = "status") -> float:
    """A memory figure /proc gives in kB, in MB: `VmHWM`, `VmRSS` (status), `Pss`
    (smaps_rollup)."""
    with open(f"/proc/{pid}/{file}") as lines:
        for line in lines:
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def processes_under(home: Path) -> Iterator[tuple[int, list[bytes]]]:
    """(pid, argv) of every live process whose environment has MCP_BRIDGE_HOME=home."""
    marker = b"MCP_BRIDGE_HOME=" + os.fsencode(home)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry.name}/environ", "rb") as environ:
                if marker not in environ.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry.name}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:  # another user's, or gone
            continue
        yield int(entry.name), argv


def peak_rss_mb(pid: int) -> float:
    return proc_mb(pid, "VmHWM")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def row(label: str, samples_s: list[float]) -> tuple[float, float]:
    p50, p99 = percentile(samples_s, 0.5) * 1000, percentile(samples_s, 0.99) * 1000
    print(f"  {label:<44} p50 {p50:7.3f} ms   p99 {p99:7.3f} ms")
    return p50, p99


async def time_calls(call: Any, count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples


async def main(calls: int, server_args: list[str]) -> None:
    env = {**os.environ, "MCP_BRIDGE_HOME": str(Path("/tmp") / f"mcp-bridge-bench-{os.getpid()}")}
    with bench_server(*server_args) as url:
        print(f"server: {url} {' '.join(server_args)} ({os.cpu_count()} cores)")

        print("\nstart-up: spawn -> initialize reply, and stdin EOF -> exit (median of 10)")
        spawn, exits = [], []
        for _ in range(10):
            started = time.perf_counter()
            async with piped_bridge(url, env) as bridge:
                await bridge.request("initialize", INITIALIZE)
                spawn.append(time.perf_counter() - started)
                exits.append(await bridge.close())
        print(f"  spawn -> initialize reply   {statistics.median(spawn) * 1000:7.1f} ms")
        print(f"  stdin EOF -> exit           {statistics.median(exits) * 1000:7.1f} ms")

        print(f"\ntools/call noop, {calls} sequential calls")
        async with Client(url) as direct:
            await time_calls(lambda: direct.call_tool("noop", {}), 20)  # warm up
            direct_samples = await time_calls(lambda: direct.call_tool("noop", {}), calls)
        params = StdioServerParameters(command=BRIDGE[0], args=[*BRIDGE[1:], url], env=env)
        async with Client(params) as via_bridge:
            await time_calls(lambda: via_bridge.call_tool("noop", {}), 20)
            bridged_samples = await time_calls(lambda: via_bridge.call_tool("noop", {}), calls)
        direct_p50, _ = row("direct SDK client over HTTP", direct_samples)
        bridged_p50, _ = row("SDK client over stdio, through the bridge", bridged_samples)
        async with piped_bridge(url, env) as bridge:
            await bridge.request("initialize", INITIALIZE)
            await bridge.notify("notifications/initialized")
            noop = {"name": "noop", "arguments": {}}
            await time_calls(lambda: bridge.request("tools/call", noop), 20)
            piped_samples = await time_calls(lambda: bridge.request("tools/call", noop), calls)
            piped_p50, _ = row("bare pipe client, through the bridge", piped_samples)

            print("\n16 concurrent tools/call sleep(200 ms), through the bridge")
            started = time.perf_counter()
            replies = await asyncio.gather(
                *(
                    bridge.request("tools/call", {"name": "sleep", "arguments": {"ms": 200}})
                    for _ in range(16)
                )
            )
            together = time.perf_counter() - started
            ok = sum("result" in reply for reply in replies)
            print(f"  all 16 done in {together * 1000:.0f} ms ({ok}/16 succeeded)")

            print("\n20 MB tool result, through the bridge")
            rss_before = peak_rss_mb(bridge.process.pid)
            started = time.perf_counter()
            big = await bridge.request("tools/call", {"name": "blob", "arguments": {"mb": 20}})
            elapsed = time.perf_counter() - started
            size = len(big["result"]["content"][0]["text"])
            peak = peak_rss_mb(bridge.process.pid)
            print(
                f"  {size / 2**20:.0f} MB in {elapsed * 1000:.0f} ms; bridge peak RSS "
                f"{rss_before:.1f} MB before, {peak:.1f} MB after"
            )
            await bridge.close()
        async with Client(url) as direct:
            started = time.perf_counter()
            try:
                await direct.call_tool("blob", {"mb": 20})
                outcome = f"{(time.perf_counter() - started) * 1000:.0f} ms"
            except Exception as exc:  # the SDK's 1 MiB SSE cap is what this shows
                outcome = f"failed: {type(exc).__name__}: {str(exc)[:80]}"
            print(f"  direct SDK client, same 20 MB: {outcome}")

        print("\nsummary")
        added_ms = bridged_p50 - direct_p50
        print(f"  added p50 per call (SDK via bridge - SDK direct): {added_ms:+.3f} ms")
        print(f"  bare pipe client via bridge vs SDK direct: {piped_p50 / direct_p50:.2f}x")
        print(f"  16 x 200 ms concurrent: {together * 1000:.0f} ms (target < 400 ms)")
        print(
            f"  bridge peak RSS idle -> after 20 MB: {rss_before:.1f} -> {peak:.1f} MB "
            "(target <= 60 MB for ordinary traffic)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument(
        "--sse", action="store_true", help="server answers with SSE streams (default: JSON)"
    )
    options = parser.parse_args()
    asyncio.run(main(options.calls, [] if options.sse else ["--json"]))
