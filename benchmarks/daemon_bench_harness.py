"""What daemon_bench.py's parts share: the plan of a run, the openings and the call they
send, the issue's targets, and the bench itself (the bench server's URL, a temporary
MCP_BRIDGE_HOME, the daemon under it, and /proc readings of the processes started there)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from relay_bench import INITIALIZE, processes_under

from mcp_bridge.paths import bridge_paths
from mcp_bridge.protocol import (
    LATEST_MODERN_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
)

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
