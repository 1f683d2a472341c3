"""The registry's start-up work touches no more than it must."""

from __future__ import annotations

from pathlib import Path

from mcp_bridge.engine.registry import CredentialRegistry
from mcp_bridge.paths import bridge_paths
from mcp_bridge.store.base import CredentialVault


def _no_vault() -> CredentialVault:
    raise AssertionError("the vault (and with it the keyring) was opened")


async def test_with_no_vault_file_resuming_logins_opens_no_vault(tmp_path: Path) -> None:
    # Opening the vault loads a keyring backend: ~9 MB of a daemon's memory, for nothing
    # when there is no vault, so no login to resume.
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(tmp_path)})
    registry = CredentialRegistry(paths, open_vault=_no_vault)
    try:
        assert await registry.resume_stored_logins() == 0
    finally:
        await registry.aclose()
