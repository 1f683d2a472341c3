"""A vault header's scrypt parameters are read from the file before any integrity check, so
they are capped at what mcp-bridge writes plus a margin (issue 8): a crafted header must not
buy a 16 GiB derivation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.paths import bridge_paths
from mcp_bridge.store import FileVault, PassphraseKeySource, VaultUnreadable
from mcp_bridge.store import key_sources as key_sources_module
from mcp_bridge.store.vault_format import (
    MAGIC,
    MAX_SCRYPT_MEMORY_BYTES,
    CorruptVault,
    ScryptParams,
    VaultHeader,
)

GIB = 2**30


def _header(log2_n: int, r: int, p: int) -> bytes:
    params = ScryptParams(salt=b"s" * 16, log2_n=log2_n, r=r, p=p)
    return VaultHeader("passphrase", b"c" * 16, params).to_bytes()


def test_what_mcp_bridge_writes_is_within_the_caps() -> None:
    written = ScryptParams.fresh(PassphraseKeySource().log2_n)
    assert written.is_sane()
    kdf = VaultHeader.from_bytes(_header(written.log2_n, written.r, written.p)).kdf
    assert kdf is not None
    assert (kdf.log2_n, kdf.r, kdf.p) == (written.log2_n, written.r, written.p)


@pytest.mark.parametrize(
    ("log2_n", "r", "p"),
    [
        (22, 32, 16),  # 16 GiB, and what the old bounds let through
        (21, 1, 1),  # n past 2**20
        (14, 17, 1),  # r past 16
        (14, 8, 5),  # p past 4
        (20, 16, 1),  # each within its cap, but 2 GiB together
        (9, 8, 1),  # below the floor: too weak to be ours
    ],
)
def test_a_header_asking_for_more_is_damaged_or_hostile(log2_n: int, r: int, p: int) -> None:
    with pytest.raises(CorruptVault, match="damaged or hostile"):
        VaultHeader.from_bytes(_header(log2_n, r, p))


@pytest.mark.parametrize(("log2_n", "r", "p"), [(20, 8, 4), (17, 16, 4), (10, 1, 1)])
def test_the_caps_leave_a_margin_above_what_is_written(log2_n: int, r: int, p: int) -> None:
    kdf = VaultHeader.from_bytes(_header(log2_n, r, p)).kdf
    assert kdf is not None
    assert (kdf.log2_n, kdf.r, kdf.p) == (log2_n, r, p)


@given(st.integers(0, 64), st.integers(-4, 2**40), st.integers(-4, 2**40))
def test_sane_parameters_never_cost_more_than_the_memory_cap(log2_n: int, r: int, p: int) -> None:
    params = ScryptParams(salt=b"s" * 16, log2_n=log2_n, r=r, p=p)
    if params.is_sane():
        assert 128 * r * 2**log2_n <= MAX_SCRYPT_MEMORY_BYTES <= GIB
        assert 1 <= p <= 4


async def test_a_crafted_vault_file_is_refused_before_deriving(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)})
    vault = FileVault.at(paths, PassphraseKeySource("pw", log2_n=12))
    async with vault.transaction() as txn:
        txn.put("tokens", "k", {"v": 1})
    blob = vault.vault_file.read_bytes()
    start = len(MAGIC) + 4
    length = int.from_bytes(blob[len(MAGIC) : start], "big")
    doc = json.loads(blob[start : start + length])
    doc["kdf"].update(log2_n=22, r=32, p=16)
    raw = json.dumps(doc, separators=(",", ":")).encode()
    vault.vault_file.write_bytes(MAGIC + len(raw).to_bytes(4, "big") + raw + blob[start + length :])

    def no_derivation(**_: object) -> None:
        raise AssertionError("scrypt ran on a hostile header")

    monkeypatch.setattr(key_sources_module, "Scrypt", no_derivation)
    with pytest.raises(VaultUnreadable, match="damaged or hostile") as refused:
        await FileVault.at(paths, PassphraseKeySource("pw")).get("tokens", "k")
    assert "vault.bin" in str(refused.value)  # names the file (where it was moved)
