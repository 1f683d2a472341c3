"""Vault timings: the OS keyring key source (a real, private gnome-keyring) beside the key file.

    python benchmarks/vault_bench.py [--runs N] [--records N]

Prints median and p95 for: a read, a locked read-modify-write (what a token refresh does to
the vault), and a cold read (a new vault object: key fetched from its source, as a freshly
started process does). Machines are noisy, so each keyring figure is also given as a ratio
to the key-file figure measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mcp_bridge.paths import bridge_paths
from mcp_bridge.store import FileVault, KeyFileKeySource, KeyringKeySource
from mcp_bridge.store.key_sources import KeySource
from tests.fixtures.secret_service import binaries_missing, running_secret_service

# A realistic per-server token set (docs/keyrings.md §3): a 2236-char JWT, a 1467-char refresh
# token.
TOKENS = {
    "access_token": "eyJ" + "a" * 2233,
    "refresh_token": "r" * 1467,
    "expires_at": 1_800_000_000,
    "scope": "openid offline_access mcp:tools",
}


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


async def timed(runs: int, operation: Callable[[], Awaitable[object]]) -> list[float]:
    await operation()  # warm-up, not counted
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        await operation()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


async def measure(
    make_source: Callable[[], KeySource], home: Path, runs: int, records: int
) -> dict[str, list[float]]:
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(home)})
    vault = FileVault.at(paths, make_source())
    async with vault.transaction() as txn:
        for index in range(records):
            txn.put("tokens", f"server-{index}", dict(TOKENS, n=index))

    async def read() -> object:
        return await vault.get("tokens", "server-0")

    async def read_modify_write() -> None:
        async with vault.transaction() as txn:
            current = txn.get("tokens", "server-0")
            assert current is not None
            txn.put("tokens", "server-0", dict(current, n=current["n"] + 1))

    async def cold_read() -> object:
        return await FileVault.at(paths, make_source()).get("tokens", "server-0")

    return {
        "read": await timed(runs, read),
        "locked read-modify-write": await timed(runs, read_modify_write),
        "cold read (new vault object)": await timed(max(5, runs // 10), cold_read),
    }


def report(keyring: dict[str, list[float]], keyfile: dict[str, list[float]]) -> None:
    print(f"{'operation':32} {'source':8} {'n':>4} {'median ms':>10} {'p95 ms':>9} {'ratio':>7}")
    for operation, keyfile_samples in keyfile.items():
        base = statistics.median(keyfile_samples)
        for source, samples in (("keyfile", keyfile_samples), ("keyring", keyring[operation])):
            median = statistics.median(samples)
            print(
                f"{operation:32} {source:8} {len(samples):>4} {median:>10.2f} "
                f"{percentile(samples, 0.95):>9.2f} {median / base:>6.2f}x"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--records", type=int, default=10, help="servers' token sets in the vault")
    args = parser.parse_args()
    if (why := binaries_missing()) is not None:
        print(f"cannot run: {why}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="mcpb-bench-") as scratch:
        root = Path(scratch)
        keyfile = asyncio.run(
            measure(
                lambda: KeyFileKeySource(root / "kf" / "data" / "vault.key"),
                root / "kf",
                args.runs,
                args.records,
            )
        )
        with running_secret_service() as service:
            os.environ["DBUS_SESSION_BUS_ADDRESS"] = service.address
            from keyring.backends import SecretService

            username = f"vault-key-bench-{uuid.uuid4().hex[:8]}"
            keyring = asyncio.run(
                measure(
                    lambda: KeyringKeySource(
                        backend=SecretService.Keyring(),  # type: ignore[no-untyped-call]
                        username=username,
                    ),
                    root / "kr",
                    args.runs,
                    args.records,
                )
            )
    size = (len(str(TOKENS)) * args.records) // 1024
    print(f"vault with {args.records} token sets (~{size} KiB of JSON), {os.cpu_count()} CPUs")
    report(keyring, keyfile)
    return 0


if __name__ == "__main__":
    sys.exit(main())
