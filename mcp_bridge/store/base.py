"""The credential vault's contract, as the rest of the bridge uses it.

Records are JSON objects filed under a namespace and a key, e.g. namespace "clients" keyed
by authorization-server issuer, namespace "tokens" keyed by issuer and resource. The vault
encrypts them at rest; callers never see how.

`transaction()` is the one way to read-modify-write: it takes an in-process lock and the
cross-process file lock, re-reads the file, and writes atomically on a clean exit. A token
refresh runs inside one, so a rotating refresh token is spent by one process only.

Implementations: FileVault (file_vault.py; `open_vault()` in selection.py picks its key
source) and MemoryVault (memory.py, for tests and for running without a vault).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from mcp_bridge.jsonrpc import JsonObject


class VaultTransaction(Protocol):
    """A locked, consistent view of the vault; changes are written when the block exits
    without an exception and discarded otherwise."""

    def get(self, namespace: str, key: str) -> JsonObject | None: ...

    def put(self, namespace: str, key: str, value: JsonObject) -> None: ...

    def delete(self, namespace: str, key: str) -> bool:
        """Remove a record; False when there was none."""
        ...

    def keys(self, namespace: str) -> list[str]:
        """The keys in `namespace`, sorted."""
        ...


class CredentialVault(Protocol):
    """Where every credential of the bridge lives. All methods may raise VaultError."""

    async def get(self, namespace: str, key: str) -> JsonObject | None:
        """One record, read under the lock (a short transaction)."""
        ...

    def transaction(self) -> AbstractAsyncContextManager[VaultTransaction]:
        """Locked read-modify-write; see the module docstring."""
        ...

    async def check(self) -> None:
        """Raise VaultError now if credentials could not be stored (an unusable keyring, no
        passphrase): call it before work whose result must be saved, e.g. a browser login."""
        ...

    def describe(self) -> str:
        """Where the vault's key comes from, for `status` and `doctor` (never the key)."""
        ...


def delete_matching(
    txn: VaultTransaction, namespace: str, matches: Callable[[str, JsonObject], bool]
) -> list[str]:
    """Delete every record in `namespace` for which `matches(key, record)` is true, and return
    their keys. Logout uses it: the auth layer knows which keys belong to a server."""
    doomed = [
        key for key in txn.keys(namespace) if (r := txn.get(namespace, key)) and matches(key, r)
    ]
    for key in doomed:
        txn.delete(namespace, key)
    return doomed
