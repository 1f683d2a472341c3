"""Vaults that cannot be read and keyrings that cannot be trusted: each gives its own error,
whose message names the next step, and nothing is overwritten or lost silently.

Keyring doubles here are duck-typed (KeyringLike), never KeyringBackend subclasses, which
would register themselves as backends for the whole process (docs/keyrings.md §2)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import keyring.backends.null
import keyring.errors
import pytest

from mcp_bridge.errors import VaultError
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.paths import bridge_paths
from mcp_bridge.store import FileVault, KeyringUnusable, PassphraseKeySource, VaultUnreadable
from mcp_bridge.store.vault_format import MAGIC
from tests.fixtures.vault_checks import (
    assert_names_the_alternatives,
    assert_no_token_in_files,
    keyfile_vault,
    keyring_vault,
    passphrase_vault,
    unreadable_copies,
)


async def put(vault: FileVault, key: str, value: JsonObject) -> None:
    async with vault.transaction() as txn:
        txn.put("tokens", key, value)


def _reorder_header(blob: bytes) -> bytes:
    """The same header meaning in different bytes of the same length: only the AES-GCM
    associated data can notice."""
    start = len(MAGIC) + 4
    length = int.from_bytes(blob[len(MAGIC) : start], "big")
    doc = json.loads(blob[start : start + length])
    reordered = json.dumps(dict(reversed(doc.items())), separators=(",", ":")).encode()
    assert len(reordered) == length
    assert reordered != blob[start : start + length]
    return blob[:start] + reordered + blob[start + length :]


# ---- unreadable vault files -------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda blob: b"not a vault at all", id="garbage"),
        pytest.param(lambda blob: blob[: len(blob) // 2], id="truncated"),
        pytest.param(lambda blob: blob[:-5] + bytes([blob[-5] ^ 1]) + blob[-4:], id="bit-flip"),
        pytest.param(lambda blob: _reorder_header(blob), id="header-reordered"),
        pytest.param(lambda blob: MAGIC, id="signature-only"),
    ],
)
async def test_a_corrupt_vault_is_moved_aside_and_asks_for_a_new_login(
    tmp_path: Path, damage: object
) -> None:
    vault = keyfile_vault(tmp_path)
    await put(vault, "k", {"v": 1})
    original = vault.vault_file.read_bytes()
    damaged = damage(original)  # type: ignore[operator]
    vault.vault_file.write_bytes(damaged)

    with pytest.raises(VaultUnreadable) as caught:
        await keyfile_vault(tmp_path).get("tokens", "k")

    message = str(caught.value)
    assert "could not be read" in message
    assert "Log in again" in message
    [aside] = unreadable_copies(tmp_path)
    assert str(aside) in message
    assert aside.read_bytes() == damaged  # kept as it was, for the user to inspect
    # Nothing crashes afterwards: the next transaction starts a fresh vault.
    fresh = keyfile_vault(tmp_path)
    assert await fresh.get("tokens", "k") is None
    await put(fresh, "k", {"v": 2})
    assert await keyfile_vault(tmp_path).get("tokens", "k") == {"v": 2}
    assert unreadable_copies(tmp_path) == [aside]


async def test_a_deleted_key_file_moves_the_vault_aside(tmp_path: Path) -> None:
    vault = keyfile_vault(tmp_path)
    await put(vault, "k", {"v": 1})
    (tmp_path / "data" / "vault.key").unlink()
    with pytest.raises(VaultUnreadable, match=r"key file .* is missing.*Log in again"):
        await keyfile_vault(tmp_path).get("tokens", "k")
    assert len(unreadable_copies(tmp_path)) == 1


async def test_a_wrong_passphrase_says_so_and_keeps_the_vault(tmp_path: Path) -> None:
    await put(passphrase_vault(tmp_path, "right"), "k", {"v": 1})
    before = (tmp_path / "data" / "vault.bin").read_bytes()
    with pytest.raises(VaultError, match=r"passphrase is wrong.*MCP_BRIDGE_VAULT_PASSPHRASE") as e:
        await passphrase_vault(tmp_path, "wrong").get("tokens", "k")
    assert not isinstance(e.value, VaultUnreadable)
    assert unreadable_copies(tmp_path) == []
    assert (tmp_path / "data" / "vault.bin").read_bytes() == before
    assert await passphrase_vault(tmp_path, "right").get("tokens", "k") == {"v": 1}


async def test_a_mistyped_passphrase_is_asked_for_again(tmp_path: Path) -> None:
    await put(passphrase_vault(tmp_path, "right"), "k", {"v": 1})
    answers = iter(["tpyo", "right"])
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)})
    vault = FileVault.at(paths, PassphraseKeySource(prompt=lambda confirm: next(answers)))
    with pytest.raises(VaultError, match="passphrase is wrong"):
        await vault.get("tokens", "k")
    assert await vault.get("tokens", "k") == {"v": 1}


async def test_a_vault_from_another_key_source_is_left_alone(tmp_path: Path) -> None:
    await put(passphrase_vault(tmp_path, "pw"), "k", {"v": 1})
    with pytest.raises(VaultError, match="Set MCP_BRIDGE_VAULT=passphrase to use it"):
        await keyfile_vault(tmp_path).get("tokens", "k")
    assert unreadable_copies(tmp_path) == []


async def test_hostile_kdf_parameters_are_refused_before_deriving(tmp_path: Path) -> None:
    vault = passphrase_vault(tmp_path, "pw")
    await put(vault, "k", {"v": 1})
    blob = vault.vault_file.read_bytes()
    vault.vault_file.write_bytes(blob.replace(b'"log2_n":12', b'"log2_n":40'))
    with pytest.raises(VaultUnreadable, match="out of range"):
        await passphrase_vault(tmp_path, "pw").get("tokens", "k")


async def test_no_passphrase_and_no_terminal_names_the_variable(tmp_path: Path) -> None:
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)})
    vault = FileVault.at(paths, PassphraseKeySource.from_env({}))  # pytest's stdin is no TTY
    with pytest.raises(VaultError, match="Set MCP_BRIDGE_VAULT_PASSPHRASE"):
        await put(vault, "k", {"v": 1})
    assert not paths.vault_file.exists()


# ---- keyrings that cannot be trusted ----------------------------------------------------


class LyingKeyring:
    """Accepts every write and answers with something else: a broken or hostile backend."""

    def get_password(self, service: str, username: str) -> str | None:
        return "not-what-you-stored"

    def set_password(self, service: str, username: str, password: str) -> None:
        pass

    def delete_password(self, service: str, username: str) -> None:
        pass


class RaisingKeyring:
    def __init__(self, error: Exception) -> None:
        self.error = error

    def get_password(self, service: str, username: str) -> str | None:
        raise self.error

    def set_password(self, service: str, username: str, password: str) -> None:
        raise self.error

    def delete_password(self, service: str, username: str) -> None:
        raise self.error


class StuckKeyring:
    """Blocks like a desktop keyring waiting on an unlock prompt nobody answers."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def get_password(self, service: str, username: str) -> str | None:
        self.release.wait()
        return None

    def set_password(self, service: str, username: str, password: str) -> None:
        self.release.wait()

    def delete_password(self, service: str, username: str) -> None:
        self.release.wait()


@pytest.mark.parametrize(
    ("backend", "why"),
    [
        pytest.param(LyingKeyring(), "read back as a different value", id="lying-fake"),
        pytest.param(
            keyring.backends.null.Keyring(),  # type: ignore[no-untyped-call]
            "`null` backend",
            id="null-backend",
        ),
        pytest.param(
            RaisingKeyring(keyring.errors.KeyringLocked("Failed to unlock the collection!")),
            "it is locked",
            id="locked",
        ),
        pytest.param(RaisingKeyring(OSError("bus gone")), "OSError: bus gone", id="dead-bus"),
    ],
)
async def test_an_untrustworthy_keyring_is_refused_with_the_alternatives(
    tmp_path: Path, backend: object, why: str
) -> None:
    vault = keyring_vault(tmp_path, backend)
    with pytest.raises(KeyringUnusable) as caught:
        await put(vault, "k", {"v": 1})
    assert why in str(caught.value)
    assert_names_the_alternatives(caught.value)
    assert not vault.vault_file.exists()  # never a fallback to something weaker


async def test_check_reports_an_unusable_keyring_before_any_work(tmp_path: Path) -> None:
    with pytest.raises(KeyringUnusable, match="read back as a different value"):
        await keyring_vault(tmp_path, LyingKeyring()).check()


async def test_check_readies_the_key_the_first_write_then_uses(tmp_path: Path) -> None:
    prompts: list[bool] = []

    def prompt(confirm: bool) -> str:
        prompts.append(confirm)
        return "typed at the terminal"

    paths = bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)})
    source = PassphraseKeySource(prompt=prompt, log2_n=12)
    vault = FileVault.at(paths, source)
    await vault.check()  # the login would start only after this
    assert not paths.vault_file.exists()
    await put(vault, "k", {"v": 1})
    assert prompts == [True]  # asked once, with confirmation, before the work
    reader = FileVault.at(paths, PassphraseKeySource("typed at the terminal", log2_n=12))
    assert await reader.get("tokens", "k") == {"v": 1}
    await reader.check()  # an existing, readable vault passes too


async def test_null_backend_chosen_by_environment_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    with pytest.raises(KeyringUnusable, match="`null` backend") as caught:
        await put(keyring_vault(tmp_path, None), "k", {"v": 1})
    assert_names_the_alternatives(caught.value)


async def test_no_session_bus_means_no_keyring(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    # Nor one where a host's thin environment makes us look (store/keyring_source.py):
    # the tests' real Secret Service, once started, has its bus in XDG_RUNTIME_DIR.
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "runtime-without-a-bus"))
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "no-keyringrc"))
    with pytest.raises(KeyringUnusable) as caught:
        await put(keyring_vault(tmp_path, None), "k", {"v": 1})
    assert_names_the_alternatives(caught.value)


async def test_a_keyring_that_never_answers_times_out(tmp_path: Path) -> None:
    stuck = StuckKeyring()
    try:
        with pytest.raises(KeyringUnusable, match="did not answer within") as caught:
            async with asyncio.timeout(60):
                await put(keyring_vault(tmp_path, stuck, timeout_s=0.5), "k", {"v": 1})
        assert_names_the_alternatives(caught.value)
    finally:
        stuck.release.set()


# ---- secrets stay in the vault ----------------------------------------------------------


async def test_no_token_appears_in_any_file_under_the_bridge_home(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    tokens = {"access_token": "AT-4f9c1e2b7d-secret", "refresh_token": "RT-8a7b6c5d4e-secret"}
    vault = keyfile_vault(tmp_path)
    for generation in range(3):
        await put(vault, f"server-{generation}", dict(tokens, generation=generation))
    # the unreadable path logs and raises: neither may carry a token
    vault.vault_file.write_bytes(vault.vault_file.read_bytes()[:-1])
    with pytest.raises(VaultUnreadable) as caught:
        await vault.get("tokens", "server-0")
    await put(vault, "again", tokens)

    assert_no_token_in_files(tmp_path, tokens.values(), at_least=3)  # vault, key, copy
    for token in tokens.values():
        assert token not in caplog.text
        assert token not in str(caught.value)
