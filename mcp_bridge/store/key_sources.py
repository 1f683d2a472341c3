"""Where the vault's data key comes from: the KeySource interface, a passphrase, a key file.

The OS keyring source lives in keyring_source.py. Every source is synchronous and may block
(a KDF, a file, a keyring): the vault calls them from a worker thread, under the vault lock,
so two processes creating the first key cannot each make one (one would lose what it wrote).

How a source answers for an existing vault decides what happens to the file:
- it returns the key: the vault decrypts;
- it raises KeyLost: the key that wrote the file is gone for good (key file deleted); the
  vault moves the file aside and asks for a new login;
- it raises KeyNotFound: the key is not where this process looks, but may be elsewhere (an
  OS keyring answering "no such item": another backend, another session, a flaky read); the
  file is left alone and no new key is made, and the message says where the key should be;
- it raises VaultError: the key may come back (wrong passphrase, locked keyring); the file is
  left alone and the message says what to fix.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from mcp_bridge.errors import VaultError
from mcp_bridge.store.vault_format import (
    KEY_BYTES,
    KeyHolder,
    ScryptParams,
    VaultHeader,
    key_check,
    key_matches,
)

log = logging.getLogger(__name__)

PASSPHRASE_ENV = "MCP_BRIDGE_VAULT_PASSPHRASE"


class KeyLost(Exception):
    """The key that wrote this vault no longer exists; the vault can never be read again."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class KeyNotFound(Exception):
    """This process does not find the key that wrote the vault, but it may exist elsewhere.
    `reason` says where the vault's key is and what this process sees instead; `next_step`
    how to reach it. The vault wraps both in a VaultError naming the file."""

    def __init__(self, reason: str, next_step: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.next_step = next_step


class KeySource(Protocol):
    """A place the data key lives. `kind` is written into the vault header."""

    @property
    def kind(self) -> str: ...

    def describe(self) -> str:
        """Where the key comes from and what that protects against (never the key)."""
        ...

    def new_key(self) -> tuple[bytes, VaultHeader]:
        """A key and header for a vault being created. May reuse a key that already exists."""
        ...

    def open_key(self, header: VaultHeader) -> bytes:
        """The key for an existing vault with this header. Raises KeyLost, KeyNotFound or
        VaultError."""
        ...

    def holder(self) -> KeyHolder | None:
        """Where the key this source last read or stored lives, for the vault header; None
        when there is nothing to record (a passphrase, a key file beside the vault)."""
        ...


def encode_key(key: bytes) -> str:
    return base64.b64encode(key).decode("ascii")


def decode_key(text: str | None) -> bytes | None:
    """The key stored as base64 text, or None if `text` is missing or not a key."""
    if text is None:
        return None
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    return key if len(key) == KEY_BYTES else None


# ---- passphrase -------------------------------------------------------------------------


def tty_prompt(confirm: bool) -> str:
    """Ask on the terminal; refuse (with the env var to use) when there is none.
    stdin is checked, not just /dev/tty: under an MCP host stdin carries JSON-RPC."""
    if sys.stdin is None or not sys.stdin.isatty():
        raise VaultError(
            "The vault is set to use a passphrase, but none is set and there is no terminal "
            "to ask for one",
            next_step=f"Set {PASSPHRASE_ENV} in the environment of mcp-bridge",
        )
    first = getpass.getpass("mcp-bridge vault passphrase: ")
    if confirm and getpass.getpass("Repeat the passphrase: ") != first:
        raise VaultError("The two passphrases differ", next_step="Run the command again")
    return first


@dataclass
class PassphraseKeySource:
    """Key = scrypt(passphrase, salt); the salt and cost are in the vault header.
    Protects the file at rest as well as the passphrase is kept away from the disk.

    Scrypt rather than Argon2id: cryptography has had Scrypt since long before our lowest
    supported version (42), while its Argon2id needs 44+ and a recent OpenSSL. n=2**17 costs
    about 0.5 s here, once per process (the vault caches the derived key)."""

    passphrase: str | None = field(default=None, repr=False)
    prompt: Callable[[bool], str] = tty_prompt
    log2_n: int = 17  # tests lower it; readers use whatever the header says
    _was_prompted: bool = field(default=False, init=False, repr=False)

    kind = "passphrase"

    @classmethod
    def from_env(cls, environ: dict[str, str] | os._Environ[str]) -> PassphraseKeySource:
        return cls(passphrase=environ.get(PASSPHRASE_ENV) or None)

    def describe(self) -> str:
        return (
            "a passphrase (scrypt); the vault is safe at rest as long as the passphrase is not "
            f"stored on the same disk (it is read from {PASSPHRASE_ENV} or asked for)"
        )

    def new_key(self) -> tuple[bytes, VaultHeader]:
        params = ScryptParams.fresh(self.log2_n)
        key = self._derive(params, confirm=True)
        return key, VaultHeader(self.kind, key_check(key), params)

    def open_key(self, header: VaultHeader) -> bytes:
        if header.kdf is None:
            raise KeyLost("its header has no key derivation parameters")
        key = self._derive(header.kdf, confirm=False)
        if not key_matches(header, key):
            if self._was_prompted:
                self.passphrase = None  # ask again next time rather than repeat the typo
            # Decision: keep the file. A wrong passphrase is usually a typo or a stale
            # variable, and moving the vault aside would cost every login for a typo.
            raise VaultError(
                "The vault passphrase is wrong",
                next_step=f"Set the right one in {PASSPHRASE_ENV}; if it is forgotten, delete "
                "the vault file and log in again",
            )
        return key

    def holder(self) -> KeyHolder | None:
        return None

    def _derive(self, params: ScryptParams, *, confirm: bool) -> bytes:
        if self.passphrase is None:
            self.passphrase = self.prompt(confirm)
            self._was_prompted = True
        if not self.passphrase:
            raise VaultError(
                "The vault passphrase is empty", next_step=f"Set a non-empty {PASSPHRASE_ENV}"
            )
        kdf = Scrypt(salt=params.salt, length=KEY_BYTES, n=2**params.log2_n, r=params.r, p=params.p)
        return kdf.derive(self.passphrase.encode("utf-8"))


# ---- key file ---------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyFileKeySource:
    """A random key in a 0600 file next to the vault. Plaintext-equivalent: it only stops a
    copy of the vault file alone from being read, like ~/.aws/credentials (docs/keyrings.md
    §5)."""

    path: Path
    kind = "keyfile"

    def describe(self) -> str:
        return (
            f"a key file, {self.path} (plaintext-equivalent: anyone who can read your home "
            "directory can decrypt the vault)"
        )

    def new_key(self) -> tuple[bytes, VaultHeader]:
        key = self._read()
        if key is None:
            key = os.urandom(KEY_BYTES)
            self._write(key)
        return key, VaultHeader(self.kind, key_check(key))

    def open_key(self, header: VaultHeader) -> bytes:
        key = self._read()
        if key is None:
            raise KeyLost(f"its key file {self.path} is missing or damaged")
        if not key_matches(header, key):
            raise KeyLost(f"its key file {self.path} holds a different key")
        return key

    def holder(self) -> KeyHolder | None:
        return None

    def _read(self) -> bytes | None:
        try:
            text = self.path.read_text("ascii")
            mode = self.path.stat().st_mode
        except FileNotFoundError:
            return None
        except (OSError, UnicodeDecodeError) as exc:
            raise VaultError(
                f"The vault key file {self.path} cannot be read ({type(exc).__name__})",
                next_step="Check its owner and permissions",
            ) from exc
        if os.name == "posix" and mode & 0o077:
            log.warning("vault key file %s is readable by other users; chmod 600 it", self.path)
        return decode_key(text)

    def _write(self, key: bytes) -> None:
        # Only ever called under the vault lock, so no other writer races us here.
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(self.path.name + ".new")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (encode_key(key) + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
