"""What `doctor` learns of the credential vault without changing anything: the key source
this environment selects, whether it answers and opens the vault, and the records.

Nothing is written and nothing is asked: the key source is a read-only one (no keyring probe
item, no new key, no passphrase prompt) and a damaged vault stays where it is.

`python -m mcp_bridge.store.inspection` prints the outcome as one JSON line (where the key
comes from, whether a vault exists; never a record, a key or a secret): `doctor` runs
it in the thin environment a desktop client starts mcp-bridge with.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass, field

from mcp_bridge.errors import BridgeError
from mcp_bridge.paths import BridgePaths, bridge_paths
from mcp_bridge.store.file_vault import FileVault
from mcp_bridge.store.key_sources import PASSPHRASE_ENV
from mcp_bridge.store.keyring_source import KeyringKeySource, KeyringLike
from mcp_bridge.store.selection import VaultKind, choose_kind, key_source_for, no_passphrase
from mcp_bridge.store.transaction import RecordsTransaction
from mcp_bridge.store.vault_format import Records

__all__ = ["VaultInspection", "inspect_vault", "inspection_report"]

Environ = dict[str, str] | os._Environ[str]


@dataclass(frozen=True, slots=True)
class VaultInspection:
    """The vault as this environment sees it. `records` None: no vault file yet."""

    kind: VaultKind
    description: str  # where the key comes from (FileVault.describe), never the key
    records: Records | None = field(repr=False)

    def view(self) -> RecordsTransaction:
        """The records to read with the auth layer's record functions; a change made
        through it stays in this process, nothing is ever saved."""
        return RecordsTransaction(self.records or {})


async def inspect_vault(
    environ: Environ | None = None,
    *,
    paths: BridgePaths | None = None,
    keyring_backend: KeyringLike | None = None,
) -> VaultInspection:
    """Open the vault read-only, as `run` would in `environ`. Raises ConfigError for an
    unknown MCP_BRIDGE_VAULT and VaultError when the key source cannot be used (the same
    messages a login would meet)."""
    env = os.environ if environ is None else environ
    where = paths if paths is not None else bridge_paths(env)
    kind = choose_kind(None, env)
    source = key_source_for(
        kind, where, environ=env, keyring_backend=keyring_backend, read_only=True
    )
    vault = FileVault.at(where, source)
    records = await vault.snapshot()
    if records is None:
        # No vault to open yet: ask the source what the first login will ask it.
        if isinstance(source, KeyringKeySource):
            await asyncio.to_thread(source.has_key)
        elif kind is VaultKind.PASSPHRASE and not env.get(PASSPHRASE_ENV):
            raise no_passphrase()
    return VaultInspection(kind, vault.describe(), records)


def inspection_report(environ: Environ | None = None) -> dict[str, object]:
    """`inspect_vault` as a JSON object: `ok`, and `kind`, `vault` (where its key comes
    from) and `exists`, or `what` and `next_step`."""
    try:
        found = asyncio.run(inspect_vault(environ))
    except BridgeError as exc:
        return {"ok": False, "what": exc.what, "next_step": exc.next_step}
    return {
        "ok": True,
        "kind": found.kind.value,
        "vault": found.description,
        "exists": found.records is not None,
    }


if __name__ == "__main__":
    sys.stdout.write(json.dumps(inspection_report()) + "\n")
