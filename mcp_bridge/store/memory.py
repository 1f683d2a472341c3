"""MemoryVault: the vault contract with nothing saved, for tests of other layers and for
running without a vault. Credentials live as long as the object."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.store.base import VaultTransaction
from mcp_bridge.store.transaction import RecordsTransaction
from mcp_bridge.store.vault_format import Records


class MemoryVault:
    """A CredentialVault in memory. Transactions are serialised and all-or-nothing, like the
    file vault's, so code tested against this one behaves the same against the real one."""

    def __init__(self) -> None:
        self._records: Records = {}
        self._lock = asyncio.Lock()

    async def get(self, namespace: str, key: str) -> JsonObject | None:
        async with self.transaction() as txn:
            return txn.get(namespace, key)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[VaultTransaction]:
        async with self._lock:
            # Work on a copy: an exception in the block must leave the vault as it was.
            txn = RecordsTransaction({ns: dict(records) for ns, records in self._records.items()})
            try:
                yield txn
            finally:
                txn.close()
            if txn.changed:
                self._records = txn.records

    async def check(self) -> None:
        """Nothing can go wrong with a dict."""

    def describe(self) -> str:
        return "in memory only (nothing is saved; credentials are lost when mcp-bridge exits)"
