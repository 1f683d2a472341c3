"""keyrings.alt's file backends are never the default key source (issue 8). Installed, they
are viable everywhere: with no Secret Service, keyring picks its plaintext file, and with
two of them its chainer, which falls through to a file when the real keyring fails. The
README promises no silent fall back to plain text, so each is refused by name, with the
opt-ins in the message.

The judgement is by class name (keyrings.alt is no dependency), so the first tests run
without it; the others use the real backends and skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keyring.backend
import keyring.backends.chainer
import pytest

from mcp_bridge.store import KeyringKeySource, KeyringUnusable
from mcp_bridge.store.keyring_source import detect_backend, refuses_to_store
from tests.fixtures.keyring_doubles import MemoryKeyring
from tests.fixtures.vault_checks import assert_names_the_alternatives

# Stand-ins named as keyrings.alt names them, not KeyringBackend subclasses (those would
# register themselves with keyring for the whole test process). A MemoryKeyring keeps what
# it is given, so only the refusal can stop it.
_FileBacked: Any = type("FileBacked", (), {"__module__": "keyrings.alt.file_base"})
_LookalikePlaintext: Any = type(
    "PlaintextKeyring", (_FileBacked, MemoryKeyring), {"__module__": "keyrings.alt.file"}
)


def _refusal(backend: object) -> KeyringUnusable:
    with pytest.raises(KeyringUnusable) as refused:
        KeyringKeySource(backend=backend).new_key()  # type: ignore[arg-type]
    assert_names_the_alternatives(refused.value)
    return refused.value


def test_a_file_backed_backend_is_refused_by_name() -> None:
    backend = _LookalikePlaintext()
    refused = _refusal(backend)
    assert "keyrings.alt.file.PlaintextKeyring" in str(refused)
    assert "file" in refused.why
    assert backend.items == {}  # refused before the probe wrote anything


def test_a_keyring_that_stores_is_not_refused_for_its_name() -> None:
    assert refuses_to_store(MemoryKeyring()) is None


# ---- the real keyrings.alt ----------------------------------------------------------------


@pytest.fixture
def alt_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """keyrings.alt.file, its files kept under tmp_path, and no Secret Service in reach."""
    module = pytest.importorskip("keyrings.alt.file")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # no keyringrc.cfg
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", f"unix:path={tmp_path / 'no-bus'}")
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND", raising=False)
    return module


def _files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.mark.parametrize("name", ["PlaintextKeyring", "EncryptedKeyring"])
def test_keyrings_alt_file_backends_are_refused(alt_file: Any, tmp_path: Path, name: str) -> None:
    # Made without __init__: EncryptedKeyring's needs pycryptodome, and would ask for a
    # password on the terminal at first use, which is mcp-bridge's stdin.
    backend = object.__new__(getattr(alt_file, name))
    assert f"keyrings.alt.file.{name}" in str(_refusal(backend))
    assert _files_under(tmp_path) == []


def test_the_default_choice_never_lands_on_a_file(
    alt_file: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What keyring itself does once two file backends are viable (pycryptodome installed):
    # its chainer outranks everything, and writes to the next backend when one fails.
    monkeypatch.setattr(keyring.backends.chainer.ChainerBackend, "priority", 10)
    assert not isinstance(detect_backend(), keyring.backends.chainer.ChainerBackend)
    assert "keyrings.alt.file" in str(_refusal(None))
    assert _files_under(tmp_path) == []


def test_a_chainer_chosen_by_environment_that_reaches_a_file_is_refused(
    alt_file: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring.backend.get_all_keyring()  # loads the keyrings.alt entry points
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.chainer.ChainerBackend")
    refused = _refusal(None)
    assert "keyrings.alt.file.PlaintextKeyring" in str(refused)
    assert _files_under(tmp_path) == []
