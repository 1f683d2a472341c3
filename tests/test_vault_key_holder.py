"""The vault header's record of where its key is (the key holder: keyring backend, service
and item), as `mcp-bridge status` shows it; an old header without the record opens and gains
it on the next write, or is kept when its key is absent; a damaged record is a damaged
header. What happens when the key is not found is in test_vault_key_elsewhere.py."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from mcp_bridge.store import VaultKeyNotFound
from mcp_bridge.store.key_sources import encode_key
from mcp_bridge.store.keyring_source import KEY_USERNAME, SERVICE
from mcp_bridge.store.vault_format import (
    KEY_BYTES,
    MAGIC,
    CorruptVault,
    KeyHolder,
    VaultHeader,
    key_check,
)
from tests.fixtures.keyring_doubles import DesktopKeyring, OtherKeyring, name_of
from tests.fixtures.secret_service import SECRET_SERVICE
from tests.fixtures.vault_checks import ITEM, header_of, keyring_vault, put, unreadable_copies


def old_format_vault(key: bytes, records: dict[str, dict[str, dict[str, int]]]) -> bytes:
    """A vault file exactly as mcp-bridge wrote it before the header named the key holder."""
    doc = {"format": 1, "key_check": base64.b64encode(key_check(key)).decode(), "source": "keyring"}
    raw = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")
    aad = MAGIC + len(raw).to_bytes(4, "big") + raw
    nonce = os.urandom(12)
    plain = json.dumps({"records": records}, separators=(",", ":")).encode()
    return aad + nonce + AESGCM(key).encrypt(nonce, plain, aad)


async def test_the_header_records_backend_and_item_and_status_shows_it(tmp_path: Path) -> None:
    vault = keyring_vault(tmp_path, DesktopKeyring())
    await put(vault, "k", 1)
    assert header_of(vault).holder == KeyHolder(name_of(DesktopKeyring), SERVICE, KEY_USERNAME)
    # `mcp-bridge status` prints describe() before it opens the vault.
    described = keyring_vault(tmp_path, OtherKeyring()).describe()
    assert f"its key is in the item {ITEM} of the keyring backend {name_of(DesktopKeyring)}" in (
        described
    )


async def test_an_old_header_opens_and_gains_the_record_on_the_next_write(tmp_path: Path) -> None:
    desktop = DesktopKeyring()
    key = os.urandom(KEY_BYTES)
    desktop.set_password(SERVICE, KEY_USERNAME, encode_key(key))
    vault = keyring_vault(tmp_path, desktop)
    vault.vault_file.parent.mkdir(parents=True)
    old = old_format_vault(key, {"tokens": {"k": {"v": 1}}})
    vault.vault_file.write_bytes(old)

    assert await vault.get("tokens", "k") == {"v": 1}
    assert vault.vault_file.read_bytes() == old  # reading writes nothing
    assert "the file says" not in vault.describe()
    await put(vault, "k2", 2)

    blob = vault.vault_file.read_bytes()
    length = int.from_bytes(blob[len(MAGIC) : len(MAGIC) + 4], "big")
    doc = json.loads(blob[len(MAGIC) + 4 : len(MAGIC) + 4 + length])
    assert doc["format"] == 1  # what older mcp-bridge versions check: they still open it
    assert doc["format_minor"] == 1
    assert header_of(vault).holder == KeyHolder(name_of(DesktopKeyring), SERVICE, KEY_USERNAME)
    reader = keyring_vault(tmp_path, desktop)
    assert await reader.get("tokens", "k") == {"v": 1}
    assert await reader.get("tokens", "k2") == {"v": 2}


async def test_an_old_header_with_its_key_absent_is_kept(tmp_path: Path) -> None:
    vault_file = tmp_path / "data" / "vault.bin"
    vault_file.parent.mkdir(parents=True)
    old = old_format_vault(os.urandom(KEY_BYTES), {"tokens": {"k": {"v": 1}}})
    vault_file.write_bytes(old)
    with pytest.raises(VaultKeyNotFound, match="does not say where its key is") as caught:
        await keyring_vault(tmp_path, OtherKeyring()).get("tokens", "k")
    assert name_of(OtherKeyring) in str(caught.value)
    assert vault_file.read_bytes() == old
    assert unreadable_copies(tmp_path) == []


def test_a_header_round_trips_its_key_holder() -> None:
    holder = KeyHolder(SECRET_SERVICE, SERVICE, "vault-key-0123456789abcdef")
    header = VaultHeader("keyring", b"c" * 16, holder=holder)
    assert VaultHeader.from_bytes(header.to_bytes()) == header


async def test_a_holder_the_reader_would_refuse_is_not_recorded(tmp_path: Path) -> None:
    odd_name = "vault-key-" + "x" * 300  # longer than a header may name
    vault = keyring_vault(tmp_path, DesktopKeyring(), odd_name)
    await put(vault, "k", 1)
    assert header_of(vault).holder is None
    assert await vault.get("tokens", "k") == {"v": 1}
    assert unreadable_copies(tmp_path) == []


@pytest.mark.parametrize(
    "key_holder",
    [
        pytest.param("keyring.backends.SecretService.Keyring", id="not-an-object"),
        pytest.param({"backend": SECRET_SERVICE, "service": SERVICE}, id="no-username"),
        pytest.param({"backend": SECRET_SERVICE, "service": SERVICE, "username": 7}, id="not-text"),
        pytest.param(
            {"backend": "\x1b]0;pwned\x07", "service": SERVICE, "username": "u"},
            id="terminal-escape",
        ),
        pytest.param({"backend": "x" * 201, "service": SERVICE, "username": "u"}, id="too-long"),
    ],
)
def test_a_damaged_key_holder_is_a_damaged_header(key_holder: object) -> None:
    doc = {"format": 1, "source": "keyring", "key_check": "Y2NjYw==", "key_holder": key_holder}
    with pytest.raises(CorruptVault, match="key holder"):
        VaultHeader.from_bytes(json.dumps(doc).encode("ascii"))
