"""A vault whose key this process does not find is kept, byte for byte, and no new key is
made: a keyring that answers "no such item" may be another backend or session than the one
holding the key, or may have missed one read (issue 8; docs/keyrings.md §6). The keyrings
these tests see are the doubles of tests/fixtures/keyring_doubles.py, or the real Secret
Service."""

from __future__ import annotations

import os
from pathlib import Path

import keyring.backends.fail
import keyring.backends.null
import pytest

from mcp_bridge.store import (
    KeyringUnusable,
    VaultKeyNotFound,
    VaultUnreadable,
)
from mcp_bridge.store.key_sources import encode_key
from mcp_bridge.store.keyring_source import KEY_USERNAME, SERVICE
from mcp_bridge.store.vault_format import KEY_BYTES, KeyHolder
from tests.fixtures.keyring_doubles import (
    DesktopKeyring,
    OtherKeyring,
    SecretServiceLikeKeyring,
    name_of,
)
from tests.fixtures.secret_service import SECRET_SERVICE, SecretServiceHandle, real_backend
from tests.fixtures.vault_checks import (
    ITEM,
    assert_names_the_alternatives,
    header_of,
    keyring_vault,
    put,
    unreadable_copies,
)

# ---- one absent read --------------------------------------------------------------------


async def test_one_absent_read_keeps_the_vault_and_makes_no_key(tmp_path: Path) -> None:
    desktop = DesktopKeyring()
    await put(keyring_vault(tmp_path, desktop), "k", 1)
    vault_file = tmp_path / "data" / "vault.bin"
    before, keys_before = vault_file.read_bytes(), dict(desktop.items)

    desktop.absent_reads = 1
    reader = keyring_vault(tmp_path, desktop)
    with pytest.raises(VaultKeyNotFound) as caught:
        await reader.get("tokens", "k")

    assert vault_file.read_bytes() == before
    assert unreadable_copies(tmp_path) == []
    assert desktop.items == keys_before  # no new key over the old one
    message = str(caught.value)
    assert f"its key is in the item {ITEM} of the keyring backend {name_of(DesktopKeyring)}" in (
        message
    )
    assert "the same backend" in message
    assert "has no key" in message
    assert "`mcp-bridge status`" in message
    assert f"move {vault_file} away" in message
    # The keyring answers again: the same process reads and writes as before.
    assert await reader.get("tokens", "k") == {"v": 1}
    await put(reader, "k2", 2)
    assert await keyring_vault(tmp_path, desktop).get("tokens", "k") == {"v": 1}


async def test_check_refuses_before_a_login_when_the_key_is_absent(tmp_path: Path) -> None:
    await put(keyring_vault(tmp_path, DesktopKeyring()), "k", 1)
    before = (tmp_path / "data" / "vault.bin").read_bytes()
    other = OtherKeyring()
    with pytest.raises(VaultKeyNotFound):
        await keyring_vault(tmp_path, other).check()
    assert (tmp_path / "data" / "vault.bin").read_bytes() == before
    assert (SERVICE, KEY_USERNAME) not in other.items


# ---- another backend, another environment -----------------------------------------------


async def test_another_backend_is_named_with_the_item_and_the_vault_kept(
    tmp_path: Path,
) -> None:
    await put(keyring_vault(tmp_path, DesktopKeyring()), "k", 1)
    vault_file = tmp_path / "data" / "vault.bin"
    before = vault_file.read_bytes()
    other = OtherKeyring()

    with pytest.raises(VaultKeyNotFound) as caught:
        await put(keyring_vault(tmp_path, other), "k", 2)  # a login's write, not only a read

    message = str(caught.value)
    assert str(vault_file) in message
    assert f"the item {ITEM} of the keyring backend {name_of(DesktopKeyring)}" in message
    assert f"this process sees the keyring backend {name_of(OtherKeyring)}" in message
    assert "keyringrc.cfg" in message  # why two environments may pick different backends
    assert vault_file.read_bytes() == before
    assert unreadable_copies(tmp_path) == []
    assert (SERVICE, KEY_USERNAME) not in other.items


@pytest.mark.parametrize("leftover_key", [False, True], ids=["empty", "leftover-key"])
async def test_two_environments_never_destroy_each_others_vault(
    tmp_path: Path, leftover_key: bool
) -> None:
    desktop, other = DesktopKeyring(), OtherKeyring()
    if leftover_key:  # what the old back-and-forth left: a key of its own in the other backend
        other.set_password(SERVICE, KEY_USERNAME, encode_key(os.urandom(KEY_BYTES)))
    other_keys = dict(other.items)
    found = "holds a different key" if leftover_key else "has no key"

    for generation in range(1, 4):
        await put(keyring_vault(tmp_path, desktop), f"login-{generation}", generation)
        with pytest.raises(VaultKeyNotFound, match=found):
            await keyring_vault(tmp_path, other).get("tokens", "login-1")
        with pytest.raises(VaultKeyNotFound):
            await put(keyring_vault(tmp_path, other), "other-login", 0)

    reader = keyring_vault(tmp_path, desktop)
    for generation in range(1, 4):
        assert await reader.get("tokens", f"login-{generation}") == {"v": generation}
    assert await reader.get("tokens", "other-login") is None
    assert unreadable_copies(tmp_path) == []
    assert other.items == other_keys


async def test_a_process_without_a_session_bus_names_where_the_key_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await put(keyring_vault(tmp_path, SecretServiceLikeKeyring()), "k", 1)
    before = (tmp_path / "data" / "vault.bin").read_bytes()
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    no_keyring = keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]

    with pytest.raises(KeyringUnusable) as caught:
        await keyring_vault(tmp_path, no_keyring).get("tokens", "k")

    message = str(caught.value)
    assert f"the item {ITEM} of the keyring backend {name_of(SecretServiceLikeKeyring)}" in message
    assert "this process sees the keyring backend keyring.backends.fail.Keyring" in message
    assert "(no D-Bus session?)" in message
    assert "`mcp-bridge status`" in message
    assert_names_the_alternatives(caught.value)
    assert (tmp_path / "data" / "vault.bin").read_bytes() == before
    assert unreadable_copies(tmp_path) == []


async def test_the_null_backend_is_refused_and_the_vault_kept(tmp_path: Path) -> None:
    await put(keyring_vault(tmp_path, DesktopKeyring()), "k", 1)
    before = (tmp_path / "data" / "vault.bin").read_bytes()
    null = keyring.backends.null.Keyring()  # type: ignore[no-untyped-call]
    with pytest.raises(KeyringUnusable, match="`null` backend") as caught:
        await put(keyring_vault(tmp_path, null), "k", 2)
    assert name_of(DesktopKeyring) in str(caught.value)
    assert (tmp_path / "data" / "vault.bin").read_bytes() == before


async def test_a_vault_moved_to_another_home_says_its_item_name_differs(tmp_path: Path) -> None:
    desktop = DesktopKeyring()
    await put(keyring_vault(tmp_path, desktop, username="vault-key-0123"), "k", 1)
    with pytest.raises(VaultKeyNotFound, match="was it moved") as caught:
        await keyring_vault(tmp_path, desktop, username="vault-key-4567").get("tokens", "k")
    assert "'vault-key-0123'" in str(caught.value)
    assert unreadable_copies(tmp_path) == []


async def test_a_damaged_vault_with_its_key_present_is_still_moved_aside(tmp_path: Path) -> None:
    desktop = DesktopKeyring()
    vault = keyring_vault(tmp_path, desktop)
    await put(vault, "k", 1)
    blob = vault.vault_file.read_bytes()
    vault.vault_file.write_bytes(blob[:-1] + bytes([blob[-1] ^ 1]))
    with pytest.raises(VaultUnreadable, match="integrity check"):
        await keyring_vault(tmp_path, desktop).get("tokens", "k")
    assert len(unreadable_copies(tmp_path)) == 1


# ---- a real Secret Service --------------------------------------------------------------


@pytest.mark.keyring
async def test_a_normal_open_records_the_secret_service(
    secret_service: SecretServiceHandle, tmp_path: Path, key_name: str
) -> None:
    vault = keyring_vault(tmp_path, real_backend(), key_name)
    await put(vault, "k", 1)
    assert header_of(vault).holder == KeyHolder(SECRET_SERVICE, SERVICE, key_name)
    assert await keyring_vault(tmp_path, real_backend(), key_name).get("tokens", "k") == {"v": 1}


@pytest.mark.keyring
async def test_a_key_gone_from_the_secret_service_keeps_the_vault_until_it_is_back(
    secret_service: SecretServiceHandle, tmp_path: Path, key_name: str
) -> None:
    await put(keyring_vault(tmp_path, real_backend(), key_name), "k", 1)
    before = (tmp_path / "data" / "vault.bin").read_bytes()
    stored = real_backend().get_password(SERVICE, key_name)
    assert stored is not None
    real_backend().delete_password(SERVICE, key_name)

    with pytest.raises(VaultKeyNotFound, match=SECRET_SERVICE):
        await keyring_vault(tmp_path, real_backend(), key_name).get("tokens", "k")
    assert (tmp_path / "data" / "vault.bin").read_bytes() == before
    assert unreadable_copies(tmp_path) == []
    assert real_backend().get_password(SERVICE, key_name) is None  # no new key made

    real_backend().set_password(SERVICE, key_name, stored)  # e.g. the keychain restored
    assert await keyring_vault(tmp_path, real_backend(), key_name).get("tokens", "k") == {"v": 1}


@pytest.mark.keyring
async def test_two_d_bus_sessions_never_destroy_each_others_vault(
    secret_service: SecretServiceHandle,
    private_secret_service: SecretServiceHandle,
    tmp_path: Path,
    key_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The desktop session's gnome-keyring holds the key; an SSH or cron session starts a
    gnome-keyring of its own on another bus. Same backend class, different keyrings."""

    def in_session(handle: SecretServiceHandle) -> None:
        for name in ("DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR"):
            monkeypatch.setenv(name, handle.env[name])

    for generation in range(1, 3):
        in_session(secret_service)
        await put(keyring_vault(tmp_path, real_backend(), key_name), "k", generation)
        in_session(private_secret_service)
        with pytest.raises(VaultKeyNotFound, match="the same backend") as caught:
            await put(keyring_vault(tmp_path, real_backend(), key_name), "other", 0)
        assert f"of the keyring backend {SECRET_SERVICE}" in str(caught.value)
        assert real_backend().get_password(SERVICE, key_name) is None

    in_session(secret_service)
    reader = keyring_vault(tmp_path, real_backend(), key_name)
    assert await reader.get("tokens", "k") == {"v": 2}
    assert await reader.get("tokens", "other") is None
    assert unreadable_copies(tmp_path) == []
