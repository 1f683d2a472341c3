"""RecordsTransaction: the VaultTransaction both vaults hand out, over a plain dict.

Knows records, not files or locks: the vault that creates one holds the lock, and decides
from `changed` whether to write. Records go in and come out as deep copies (a JSON round
trip, which also proves at `put` time that a record can be stored), so nobody can change the
vault by mutating a dict they were given.
"""

from __future__ import annotations

import json

from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.store.vault_format import Records


def _copy(value: JsonObject) -> JsonObject:
    copied: JsonObject = json.loads(json.dumps(value))
    return copied


class RecordsTransaction:
    def __init__(self, records: Records) -> None:
        self._records = records
        self.changed = False
        self._is_open = True

    @property
    def records(self) -> Records:
        return self._records

    def close(self) -> None:
        """Called by the vault when the block ends; later use is a bug and raises."""
        self._is_open = False

    def get(self, namespace: str, key: str) -> JsonObject | None:
        self._check_open()
        record = self._records.get(namespace, {}).get(key)
        return None if record is None else _copy(record)

    def put(self, namespace: str, key: str, value: JsonObject) -> None:
        self._check_open()
        if not isinstance(value, dict):
            raise TypeError(f"vault records are JSON objects, not {type(value).__name__}")
        self._records.setdefault(namespace, {})[key] = _copy(value)
        self.changed = True

    def delete(self, namespace: str, key: str) -> bool:
        self._check_open()
        records = self._records.get(namespace, {})
        if key not in records:
            return False
        del records[key]
        if not records:
            del self._records[namespace]
        self.changed = True
        return True

    def keys(self, namespace: str) -> list[str]:
        self._check_open()
        return sorted(self._records.get(namespace, {}))

    def _check_open(self) -> None:
        if not self._is_open:
            raise RuntimeError("this vault transaction has ended; open a new one")
