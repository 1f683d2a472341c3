"""The vault against a real Secret Service (gnome-keyring on a private session bus)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_bridge.paths import bridge_paths
from mcp_bridge.store import FileVault, KeyringKeySource, KeyringUnusable
from mcp_bridge.store.keyring_source import SERVICE, detect_backend, refuses_to_store
from tests.fixtures.secret_service import SecretServiceHandle, real_backend
from tests.fixtures.vault_checks import (
    assert_names_the_alternatives,
    assert_no_token_in_files,
    keyring_vault,
)

pytestmark = pytest.mark.keyring


async def test_key_goes_to_the_keyring_once_and_records_to_the_file(
    secret_service: SecretServiceHandle, tmp_path: Path, key_name: str
) -> None:
    vault = keyring_vault(tmp_path, real_backend(), key_name)
    async with vault.transaction() as txn:
        txn.put("tokens", "k", {"refresh_token": "rt-1"})
    stored_key = real_backend().get_password(SERVICE, key_name)
    assert stored_key is not None
    assert len(stored_key) == 44  # base64 of 32 bytes: far under the 2560-byte Windows limit
    for generation in range(2, 5):
        async with vault.transaction() as txn:
            txn.put("tokens", "k", {"refresh_token": f"rt-{generation}"})
    assert real_backend().get_password(SERVICE, key_name) == stored_key  # written once
    reader = keyring_vault(tmp_path, real_backend(), key_name)
    assert await reader.get("tokens", "k") == {"refresh_token": "rt-4"}
    assert "OS keyring" in vault.describe()


async def test_backend_detected_without_get_keyring_cache(
    secret_service: SecretServiceHandle,
    tmp_path: Path,
    key_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A first look while no bus is reachable (keyring.backend.get_all_keyring caches the
    # backends viable at its first call, for the life of the process) ...
    with monkeypatch.context() as no_bus:
        no_bus.delenv("DBUS_SESSION_BUS_ADDRESS")
        # Nor the session bus detect_backend falls back to (find_session_bus).
        no_bus.setenv("XDG_RUNTIME_DIR", str(tmp_path / "no-session"))
        no_bus.delenv("PYTHON_KEYRING_BACKEND", raising=False)
        assert refuses_to_store(detect_backend()) is not None
    # ... must not stop a later look from finding the Secret Service.
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)})
    vault = FileVault.at(paths, KeyringKeySource(username=key_name))
    async with vault.transaction() as txn:
        txn.put("tokens", "k", {"v": 1})
    assert isinstance(vault.key_source, KeyringKeySource)
    assert type(vault.key_source.backend).__module__ == "keyring.backends.SecretService"


async def test_a_locked_collection_is_refused_with_the_next_step(
    private_secret_service: SecretServiceHandle, tmp_path: Path
) -> None:
    async with keyring_vault(tmp_path, real_backend(), "vault-key").transaction() as txn:
        txn.put("tokens", "k", {"v": 1})
    before = (tmp_path / "data" / "vault.bin").read_bytes()
    private_secret_service.lock_default_collection()

    with pytest.raises(KeyringUnusable, match="it is locked") as caught:
        await keyring_vault(tmp_path, real_backend(), "vault-key").get("tokens", "k")
    assert_names_the_alternatives(caught.value)
    # locked is not lost: the vault stays where it is, untouched
    assert (tmp_path / "data" / "vault.bin").read_bytes() == before
    assert list((tmp_path / "data").glob("vault.bin.unreadable-*")) == []


async def test_a_missing_bus_is_refused_with_the_next_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # SecretService chosen explicitly, but nothing listens at the bus address.
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path}/no-bus")
    vault = keyring_vault(tmp_path, real_backend(), "vault-key")
    with pytest.raises(KeyringUnusable, match="probing it failed") as caught:
        async with vault.transaction() as txn:
            txn.put("tokens", "k", {"v": 1})
    assert_names_the_alternatives(caught.value)
    assert not vault.vault_file.exists()


async def test_no_token_in_any_file_with_the_keyring_source(
    secret_service: SecretServiceHandle, tmp_path: Path, key_name: str
) -> None:
    tokens = ["eyJhbGciOi.access-token-secret", "refresh-token-secret-5c1d"]
    vault = keyring_vault(tmp_path, real_backend(), key_name)
    for generation in range(5):
        async with vault.transaction() as txn:
            txn.put("tokens", "k", {"access_token": tokens[0], "refresh_token": tokens[1]})
            txn.put("clients", f"c{generation}", {"client_secret": tokens[1]})
    assert_no_token_in_files(tmp_path, tokens, at_least=1)
