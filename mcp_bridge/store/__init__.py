"""The credential vault: key in the OS keyring (or a passphrase, or a key file), every
credential in one AES-GCM file, atomic writes under a cross-process lock."""

from mcp_bridge.store.base import CredentialVault, VaultTransaction, delete_matching
from mcp_bridge.store.file_vault import FileVault, VaultKeyNotFound, VaultUnreadable
from mcp_bridge.store.key_sources import KeyFileKeySource, KeySource, PassphraseKeySource
from mcp_bridge.store.keyring_source import KeyringKeySource, KeyringLike, KeyringUnusable
from mcp_bridge.store.memory import MemoryVault
from mcp_bridge.store.selection import VaultKind, open_vault

__all__ = [
    "CredentialVault",
    "FileVault",
    "KeyFileKeySource",
    "KeySource",
    "KeyringKeySource",
    "KeyringLike",
    "KeyringUnusable",
    "MemoryVault",
    "PassphraseKeySource",
    "VaultKeyNotFound",
    "VaultKind",
    "VaultTransaction",
    "VaultUnreadable",
    "delete_matching",
    "open_vault",
]
