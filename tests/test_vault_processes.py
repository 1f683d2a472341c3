"""The vault across real processes: refresh-token rotation from 4 processes at once, and
writers SIGKILLed mid-write. The children are this module run as a script (see `main`)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from mcp_bridge.paths import bridge_paths
from mcp_bridge.store import FileVault, KeyFileKeySource, KeyringKeySource
from mcp_bridge.store.key_sources import KeySource
from tests.fixtures.secret_service import SecretServiceHandle

REPO_ROOT = Path(__file__).resolve().parent.parent
PROCESSES = 4
ROTATIONS = 50
CHILD_TIMEOUT_S = 300.0  # generous: a loaded 2-core machine


# ---- the children -------------------------------------------------------------------------


def child_vault(home: Path, source: str, key_name: str) -> FileVault:
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(home)})
    key_source: KeySource
    if source == "keyring":
        from keyring.backends import SecretService

        backend = SecretService.Keyring()  # type: ignore[no-untyped-call]
        key_source = KeyringKeySource(backend=backend, username=key_name)
    else:
        key_source = KeyFileKeySource(paths.data_dir / "vault.key")
    return FileVault.at(paths, key_source)


async def rotate(vault: FileVault, rotations: int, out: Path) -> None:
    """What a token refresh does: read the current refresh token under the lock, "spend"
    it (a pause standing in for the HTTP call), store its successor, all in one transaction."""
    with out.open("a") as log:
        for _ in range(rotations):
            async with vault.transaction() as txn:
                current = txn.get("tokens", "server")
                assert current is not None
                await asyncio.sleep(random.uniform(0, 0.002))
                successor = f"rt-{uuid.uuid4().hex}"
                generation = current["generation"] + 1
                txn.put("tokens", "server", {"refresh_token": successor, "generation": generation})
            # logged only after the commit: a line means the rotation is on disk
            rotation = {"spent": current["refresh_token"], "new": successor, "gen": generation}
            log.write(json.dumps(rotation) + "\n")
            log.flush()


def payload_for(generation: int) -> str:
    """A large record whose every byte depends on its generation, so a torn write shows."""
    return hashlib.sha256(str(generation).encode()).hexdigest() * 600  # ~38 KB


async def write_forever(vault: FileVault, ready: Path) -> None:
    is_ready_reported = False
    while True:
        async with vault.transaction() as txn:
            current = txn.get("tokens", "server") or {"generation": 0}
            generation = current["generation"] + 1
            txn.put("tokens", "server", {"generation": generation, "blob": payload_for(generation)})
        if not is_ready_reported:  # one generation is committed: the parent may kill us now
            await asyncio.to_thread(ready.touch)
            is_ready_reported = True


def main(argv: list[str]) -> None:
    mode, home, source, key_name, *rest = argv
    vault = child_vault(Path(home), source, key_name)
    if mode == "rotate":
        out, go = Path(rest[0]), Path(rest[1])
        (out.with_suffix(".ready")).touch()
        while not go.exists():  # start together, to collide as much as possible
            time.sleep(0.005)
        asyncio.run(rotate(vault, ROTATIONS, out))
    elif mode == "write-forever":
        asyncio.run(write_forever(vault, Path(rest[0])))
    else:
        raise SystemExit(f"unknown mode {mode}")


# ---- the tests ------------------------------------------------------------------------------


def spawn(*args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop("PYTHONASYNCIODEBUG", None)  # the children should run at production speed
    return subprocess.Popen(
        [sys.executable, "-m", "tests.test_vault_processes", *args], cwd=REPO_ROOT, env=env
    )


def wait_for(path: Path, procs: list[subprocess.Popen[bytes]], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if any(p.poll() is not None for p in procs):
            raise AssertionError(f"a child exited before {path.name} appeared")
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} did not appear within {timeout_s} s")
        time.sleep(0.01)


def stop_all(procs: list[subprocess.Popen[bytes]]) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


async def seed(vault: FileVault) -> None:
    async with vault.transaction() as txn:
        txn.put("tokens", "server", {"refresh_token": "rt-initial", "generation": 0})


def run_rotations(tmp_path: Path, source: str, key_name: str) -> None:
    home = tmp_path / "home"
    asyncio.run(seed(child_vault(home, source, key_name)))
    go = tmp_path / "go"
    outs = [tmp_path / f"rotations-{i}.jsonl" for i in range(PROCESSES)]
    procs = [spawn("rotate", str(home), source, key_name, str(out), str(go)) for out in outs]
    try:
        for out in outs:
            wait_for(out.with_suffix(".ready"), procs, CHILD_TIMEOUT_S)
        go.touch()
        for proc in procs:
            assert proc.wait(CHILD_TIMEOUT_S) == 0
    finally:
        stop_all(procs)

    rotations = [json.loads(line) for out in outs for line in out.read_text().splitlines()]
    assert len(rotations) == PROCESSES * ROTATIONS
    # No refresh token was ever spent twice ...
    spent = [r["spent"] for r in rotations]
    assert len(set(spent)) == len(spent)
    # ... and the rotations form one linear chain from the seed: each spends its predecessor's.
    successor_of = {r["spent"]: r for r in rotations}
    token, generation = "rt-initial", 0
    while token in successor_of:
        step = successor_of[token]
        assert step["gen"] == generation + 1
        token, generation = step["new"], step["gen"]
    assert generation == PROCESSES * ROTATIONS  # every generation, none lost
    final = asyncio.run(child_vault(home, source, key_name).get("tokens", "server"))
    assert final == {"refresh_token": token, "generation": generation}
    # every process really took part (otherwise the race was never run)
    assert all(len(out.read_text().splitlines()) == ROTATIONS for out in outs)


def test_four_processes_rotating_with_a_key_file_spend_no_stale_token(tmp_path: Path) -> None:
    run_rotations(tmp_path, "keyfile", "unused")


@pytest.mark.keyring
def test_four_processes_rotating_with_the_real_keyring_spend_no_stale_token(
    secret_service: SecretServiceHandle, tmp_path: Path
) -> None:
    run_rotations(tmp_path, "keyring", f"vault-key-rotation-{uuid.uuid4().hex[:8]}")


def test_a_writer_killed_mid_write_leaves_a_whole_vault(tmp_path: Path) -> None:
    home = tmp_path / "home"
    rng = random.Random(20261122)
    last_generation = 0
    kills = 20
    for attempt in range(kills):
        ready = tmp_path / f"ready-{attempt}"
        proc = spawn("write-forever", str(home), "keyfile", "unused", str(ready))
        try:
            wait_for(ready, [proc], CHILD_TIMEOUT_S)
            time.sleep(rng.uniform(0, 0.15))
            proc.send_signal(signal.SIGKILL)
        finally:
            stop_all([proc])
        assert proc.returncode == -signal.SIGKILL  # it was killed, not finished or crashed

        record = asyncio.run(child_vault(home, "keyfile", "unused").get("tokens", "server"))
        assert record is not None
        assert record["blob"] == payload_for(record["generation"])  # a complete generation
        assert record["generation"] > last_generation  # the child committed at least once
        last_generation = record["generation"]
    data = home / "data"
    assert list(data.glob("vault.bin.unreadable-*")) == []
    assert last_generation >= kills


if __name__ == "__main__":
    main(sys.argv[1:])
