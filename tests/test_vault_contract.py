"""The vault contract, run against every vault and key source that needs no OS keyring:
MemoryVault, FileVault with a key file, FileVault with a passphrase."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from mcp_bridge.errors import ConfigError
from mcp_bridge.paths import bridge_paths
from mcp_bridge.store import (
    CredentialVault,
    KeyFileKeySource,
    KeyringKeySource,
    MemoryVault,
    PassphraseKeySource,
    VaultKind,
    delete_matching,
    open_vault,
)
from mcp_bridge.store.selection import choose_kind, keyring_item_name
from tests.fixtures.vault_checks import keyfile_vault, passphrase_vault

VaultFactory = Callable[[Path], CredentialVault]


def _passphrase_vault(home: Path) -> CredentialVault:
    return passphrase_vault(home, "correct horse")


_shared_memory: dict[Path, MemoryVault] = {}


def _memory_vault(home: Path) -> CredentialVault:
    # "Reopening" a memory vault gives the same object: it lives as long as the process.
    return _shared_memory.setdefault(home, MemoryVault())


@pytest.fixture(params=["memory", "keyfile", "passphrase"])
def make_vault(request: pytest.FixtureRequest) -> VaultFactory:
    factories: dict[str, VaultFactory] = {
        "memory": _memory_vault,
        "keyfile": keyfile_vault,
        "passphrase": _passphrase_vault,
    }
    return factories[request.param]


async def test_put_then_get_round_trips_through_a_new_vault_object(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    record = {"access_token": "at-1", "nested": {"scopes": ["a", "b"]}, "n": 3}
    async with make_vault(tmp_path).transaction() as txn:
        txn.put("tokens", "issuer|resource", record)
    assert await make_vault(tmp_path).get("tokens", "issuer|resource") == record
    assert await make_vault(tmp_path).get("tokens", "other") is None
    assert await make_vault(tmp_path).get("clients", "issuer|resource") is None


async def test_an_exception_in_the_block_discards_every_change(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    vault = make_vault(tmp_path)
    async with vault.transaction() as txn:
        txn.put("tokens", "a", {"v": 1})

    async def failing_refresh() -> None:
        async with vault.transaction() as txn:
            txn.put("tokens", "a", {"v": 2})
            txn.put("tokens", "b", {"v": 2})
            raise LookupError("the refresh failed")

    with pytest.raises(LookupError):
        await failing_refresh()
    assert await vault.get("tokens", "a") == {"v": 1}
    assert await vault.get("tokens", "b") is None


async def test_records_are_copies_so_mutating_them_changes_nothing(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    vault = make_vault(tmp_path)
    record: dict[str, object] = {"scopes": ["a"]}
    async with vault.transaction() as txn:
        txn.put("tokens", "k", record)
        got = txn.get("tokens", "k")
        assert got is not None
        got["scopes"] = ["mutated"]
    record["scopes"] = ["mutated too"]
    assert await vault.get("tokens", "k") == {"scopes": ["a"]}


async def test_delete_keys_and_delete_matching(make_vault: VaultFactory, tmp_path: Path) -> None:
    vault = make_vault(tmp_path)
    async with vault.transaction() as txn:
        txn.put("tokens", "https://as.one|https://mcp.one", {"server": "one"})
        txn.put("tokens", "https://as.one|https://mcp.two", {"server": "two"})
        txn.put("tokens", "https://as.two|https://mcp.one", {"server": "one"})
        txn.put("clients", "https://as.one", {"client_id": "c"})
    async with vault.transaction() as txn:
        removed = delete_matching(txn, "tokens", lambda key, rec: rec["server"] == "one")
        assert txn.delete("clients", "https://as.one") is True
        assert txn.delete("clients", "https://as.one") is False
    assert removed == ["https://as.one|https://mcp.one", "https://as.two|https://mcp.one"]
    async with vault.transaction() as txn:
        assert txn.keys("tokens") == ["https://as.one|https://mcp.two"]
        assert txn.keys("clients") == []


async def test_check_passes_and_changes_nothing(make_vault: VaultFactory, tmp_path: Path) -> None:
    vault = make_vault(tmp_path)
    await vault.check()
    async with vault.transaction() as txn:
        txn.put("tokens", "a", {"v": 1})
    await vault.check()
    assert await make_vault(tmp_path).get("tokens", "a") == {"v": 1}


async def test_a_transaction_cannot_be_used_after_its_block(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    async with make_vault(tmp_path).transaction() as txn:
        pass
    with pytest.raises(RuntimeError, match="has ended"):
        txn.put("tokens", "late", {})


async def test_concurrent_tasks_never_lose_an_update(
    make_vault: VaultFactory, tmp_path: Path
) -> None:
    vault = make_vault(tmp_path)

    async def increment() -> None:
        async with vault.transaction() as txn:
            current = txn.get("counter", "c") or {"n": 0}
            await asyncio.sleep(0)  # another task would interleave here without the lock
            txn.put("counter", "c", {"n": current["n"] + 1})

    await asyncio.gather(*(increment() for _ in range(20)))
    assert await vault.get("counter", "c") == {"n": 20}


async def test_two_vault_objects_on_one_file_exclude_each_other(tmp_path: Path) -> None:
    # Two objects means two asyncio locks: only the file lock keeps them apart.
    first, second = keyfile_vault(tmp_path), keyfile_vault(tmp_path)

    async def increment(vault: CredentialVault) -> None:
        async with vault.transaction() as txn:
            current = txn.get("counter", "c") or {"n": 0}
            await asyncio.sleep(0.001)
            txn.put("counter", "c", {"n": current["n"] + 1})

    await asyncio.gather(*(increment(v) for _ in range(10) for v in (first, second)))
    assert await first.get("counter", "c") == {"n": 20}


async def test_cancelling_a_transaction_discards_it_and_releases_the_lock(tmp_path: Path) -> None:
    vault = keyfile_vault(tmp_path)
    inside = asyncio.Event()

    async def slow_refresh() -> None:
        async with vault.transaction() as txn:
            txn.put("tokens", "k", {"v": "never saved"})
            inside.set()
            await asyncio.sleep(3600)

    task = asyncio.create_task(slow_refresh())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(30):  # would hang if the lock were still held
        assert await vault.get("tokens", "k") is None


def test_vault_files_are_owner_only(tmp_path: Path) -> None:
    async def write() -> None:
        async with keyfile_vault(tmp_path).transaction() as txn:
            txn.put("tokens", "k", {"v": 1})

    asyncio.run(write())
    data = tmp_path / "data"
    assert (data / "vault.bin").stat().st_mode & 0o777 == 0o600
    assert (data / "vault.key").stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in data.iterdir()) == ["vault.bin", "vault.key"]  # no temp left


def test_an_explicit_kind_beats_the_environment_which_beats_the_default() -> None:
    assert choose_kind(None, {}) is VaultKind.KEYRING
    assert choose_kind(None, {"MCP_BRIDGE_VAULT": "keyfile"}) is VaultKind.KEYFILE
    assert choose_kind("passphrase", {"MCP_BRIDGE_VAULT": "keyfile"}) is VaultKind.PASSPHRASE
    assert choose_kind(VaultKind.KEYRING, {"MCP_BRIDGE_VAULT": "keyfile"}) is VaultKind.KEYRING
    with pytest.raises(ConfigError, match="Set MCP_BRIDGE_VAULT to one of keyring"):
        choose_kind(None, {"MCP_BRIDGE_VAULT": "plaintext"})


def test_open_vault_builds_the_chosen_key_source(tmp_path: Path) -> None:
    env = {"MCP_BRIDGE_HOME": str(tmp_path), "MCP_BRIDGE_VAULT_PASSPHRASE": "pw"}
    keyfile = open_vault("keyfile", environ=env)
    assert isinstance(keyfile.key_source, KeyFileKeySource)
    assert "plaintext-equivalent" in keyfile.describe()
    passphrase = open_vault(environ=dict(env, MCP_BRIDGE_VAULT="passphrase"))
    assert isinstance(passphrase.key_source, PassphraseKeySource)
    assert "pw" not in repr(passphrase.key_source)
    assert keyfile.vault_file == tmp_path / "data" / "vault.bin"
    assert "OS keyring" in open_vault(environ=env).describe()


def test_a_vault_outside_the_usual_place_gets_its_own_keyring_item(tmp_path: Path) -> None:
    usual = bridge_paths({})
    assert keyring_item_name(usual, {}) == "vault-key"
    elsewhere = bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)})
    name = keyring_item_name(elsewhere, {"MCP_BRIDGE_HOME": str(tmp_path)})
    assert name.startswith("vault-key-")
    assert name != keyring_item_name(bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path / "b")}), {})
    source = open_vault(environ={"MCP_BRIDGE_HOME": str(tmp_path)}).key_source
    assert isinstance(source, KeyringKeySource)
    assert source.username == name
