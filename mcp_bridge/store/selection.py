"""Which vault this process uses: the key source from a parameter, then MCP_BRIDGE_VAULT,
then the OS keyring. Never falls back to a weaker source by itself: when the keyring is
unusable the first vault operation raises a VaultError that names the opt-in alternatives.

Choosing is cheap and never fails on an unusable keyring (so `--help` and `status` work);
the keyring is probed at first use, under the vault lock.
"""

from __future__ import annotations

import enum
import hashlib
import os

from mcp_bridge.errors import ConfigError, VaultError
from mcp_bridge.paths import HOME_ENV, BridgePaths, bridge_paths
from mcp_bridge.store.file_vault import FileVault
from mcp_bridge.store.key_sources import (
    PASSPHRASE_ENV,
    KeyFileKeySource,
    KeySource,
    PassphraseKeySource,
)
from mcp_bridge.store.keyring_source import KEY_USERNAME, KeyringKeySource, KeyringLike

VAULT_ENV = "MCP_BRIDGE_VAULT"
KEY_FILE_NAME = "vault.key"


class VaultKind(enum.Enum):
    KEYRING = "keyring"  # data key in the OS keyring (default)
    PASSPHRASE = "passphrase"  # data key derived from MCP_BRIDGE_VAULT_PASSPHRASE or a prompt
    KEYFILE = "keyfile"  # data key in a 0600 file: plaintext-equivalent, opt-in only


def choose_kind(
    kind: VaultKind | str | None = None, environ: dict[str, str] | os._Environ[str] | None = None
) -> VaultKind:
    """The explicit `kind` if given, else MCP_BRIDGE_VAULT, else the keyring."""
    env = os.environ if environ is None else environ
    choice = kind if kind is not None else (env.get(VAULT_ENV) or VaultKind.KEYRING)
    if isinstance(choice, VaultKind):
        return choice
    try:
        return VaultKind(choice.strip().lower())
    except ValueError:
        names = "|".join(k.value for k in VaultKind)
        raise ConfigError(
            f"Unknown vault key source {choice!r}", next_step=f"Set {VAULT_ENV} to one of {names}"
        ) from None


def keyring_item_name(paths: BridgePaths, environ: dict[str, str] | os._Environ[str]) -> str:
    """`vault-key` for the vault in its usual place; for one elsewhere (MCP_BRIDGE_HOME: a
    portable install, a test), a name of its own. Two vaults sharing one item could each
    create the key at first use, under different file locks, and one would lose its data."""
    usual = bridge_paths({k: v for k, v in environ.items() if k != HOME_ENV})
    if paths.vault_file == usual.vault_file:
        return KEY_USERNAME
    digest = hashlib.sha256(str(paths.vault_file).encode("utf-8")).hexdigest()[:16]
    return f"{KEY_USERNAME}-{digest}"


def key_source_for(
    kind: VaultKind,
    paths: BridgePaths,
    *,
    environ: dict[str, str] | os._Environ[str] | None = None,
    keyring_backend: KeyringLike | None = None,
    read_only: bool = False,
) -> KeySource:
    """The key source of `kind`. `read_only`: one that writes nothing and asks nothing (no
    keyring probe item, no new key, no passphrase prompt), for `doctor`."""
    env = os.environ if environ is None else environ
    match kind:
        case VaultKind.KEYRING:
            return KeyringKeySource(
                backend=keyring_backend,
                username=keyring_item_name(paths, env),
                read_only=read_only,
            )
        case VaultKind.PASSPHRASE:
            if read_only:
                return PassphraseKeySource(env.get(PASSPHRASE_ENV) or None, prompt=_no_prompt)
            return PassphraseKeySource.from_env(env)
        case VaultKind.KEYFILE:
            return KeyFileKeySource(paths.data_dir / KEY_FILE_NAME)


def no_passphrase() -> VaultError:
    """The error for a passphrase vault whose passphrase is not in the environment, where
    nothing may be asked (`doctor`; a desktop client has no terminal to ask on)."""
    return VaultError(
        f"The vault is set to use a passphrase, and {PASSPHRASE_ENV} is not set",
        next_step=f"Set {PASSPHRASE_ENV} where mcp-bridge runs (a desktop client starts it "
        "without a terminal to ask on)",
    )


def _no_prompt(confirm: bool) -> str:
    raise no_passphrase()


def open_vault(
    kind: VaultKind | str | None = None,
    *,
    paths: BridgePaths | None = None,
    environ: dict[str, str] | os._Environ[str] | None = None,
    keyring_backend: KeyringLike | None = None,
) -> FileVault:
    """The bridge's vault. Raises ConfigError only for an unknown MCP_BRIDGE_VAULT value;
    keyring trouble surfaces as VaultError at first use."""
    env = os.environ if environ is None else environ
    where = paths if paths is not None else bridge_paths(env)
    chosen = choose_kind(kind, env)
    source = key_source_for(chosen, where, environ=env, keyring_backend=keyring_backend)
    return FileVault.at(where, source)
