"""FileVault: every credential in one AES-GCM file, its key from a KeySource.

Theory of operation. A transaction takes the vault lock (asyncio lock, then the file lock),
reads and decrypts the whole file, hands the caller a RecordsTransaction, and on a clean exit
with changes encrypts and atomically replaces the file before the lock is released. Reading
under the lock is what makes a refresh safe: a process about to spend a refresh token sees
the token another process wrote a moment ago.

Blocking work (file I/O, the KDF, the keyring) runs in a worker thread. Once started it is
always waited for, even if the caller is cancelled: the lock is never released while a
thread may still be writing.

A file that is damaged, fails its integrity check, or whose key is gone for good (KeyLost) is
moved aside (`vault.bin.unreadable-<ts>`), never overwritten, and the caller gets a VaultError
asking for a new login; the next transaction starts empty. A file whose key this process
does not find (KeyNotFound: a keyring answering "no such item") stays where it is, byte for
byte, and no new key is made: the key may be in another keyring backend or session, and
moving the file aside there would lose every login (docs/keyrings.md §6).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from mcp_bridge.atomic_file import move_aside, write_atomically
from mcp_bridge.errors import VaultError
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.paths import BridgePaths
from mcp_bridge.store.base import VaultTransaction
from mcp_bridge.store.file_lock import DEFAULT_LOCK_TIMEOUT_S, AsyncVaultLock
from mcp_bridge.store.key_sources import KeyLost, KeyNotFound, KeySource
from mcp_bridge.store.transaction import RecordsTransaction
from mcp_bridge.store.vault_format import (
    CorruptVault,
    KeyHolder,
    Records,
    VaultHeader,
    decrypt,
    encrypt,
    read_header,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

UNREADABLE_LABEL = "unreadable"


class VaultUnreadable(VaultError):
    """The vault file could not be read and was moved aside; the credentials must be renewed."""

    def __init__(self, reason: str, moved_to: Path) -> None:
        super().__init__(
            f"The credential vault could not be read: {reason}. It was moved to {moved_to}",
            next_step="Log in again to each server (`mcp-bridge login NAME`); "
            "new credentials go into a fresh vault",
        )
        self.reason = reason
        self.moved_to = moved_to


class VaultKeyNotFound(VaultError):
    """The vault exists but this process does not find its key; the file was left as it is."""

    def __init__(self, vault_file: Path, reason: str, next_step: str) -> None:
        super().__init__(
            f"The credential vault {vault_file} was left as it is: {reason}",
            next_step=f"{next_step}. If that key is gone for good (the keyring was reset), "
            f"move {vault_file} away and log in again",
        )
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _Opened:
    """What a transaction read: the records and, for an existing file, its key and header."""

    records: Records = field(repr=False)
    key: bytes | None = field(repr=False)
    header: VaultHeader | None


class FileVault:
    """A CredentialVault in `vault_file`, locked through `lock_file`."""

    def __init__(
        self,
        vault_file: Path,
        lock_file: Path,
        key_source: KeySource,
        *,
        lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
    ) -> None:
        self.vault_file = vault_file
        self.key_source = key_source
        self._lock = AsyncVaultLock(lock_file, timeout_s=lock_timeout_s)
        # The last key that opened the file, with its check value: a process fetches the
        # keyring item or runs the KDF once, not on every refresh.
        self._known_key: tuple[bytes, bytes] | None = None
        # A key `check()` made ready for a vault that does not exist yet.
        self._key_for_new_vault: tuple[bytes, VaultHeader] | None = None

    @classmethod
    def at(cls, paths: BridgePaths, key_source: KeySource) -> FileVault:
        return cls(paths.vault_file, paths.vault_lock_file, key_source)

    def describe(self) -> str:
        text = f"an encrypted file, {self.vault_file}; its key comes from "
        text += self.key_source.describe()
        if (holder := self._recorded_holder()) is not None:
            text += (
                f"; the file says its key is in the item {holder.item()} of the keyring "
                f"backend {holder.backend}"
            )
        return text

    async def get(self, namespace: str, key: str) -> JsonObject | None:
        async with self.transaction() as txn:
            return txn.get(namespace, key)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[VaultTransaction]:
        async with self._lock.held():
            opened = await _run_to_completion(self._open)
            txn = RecordsTransaction(opened.records)
            try:
                yield txn
            finally:
                txn.close()
            if txn.changed:
                await _run_to_completion(lambda: self._save(txn.records, opened))

    async def check(self) -> None:
        """Raise VaultError now if credentials could not be stored: reads the vault, or for a
        new one gets its key ready (probing the keyring, creating the key, asking for the
        passphrase). No record changes. Call it before work whose result must be saved,
        such as a browser login."""
        async with self._lock.held():
            opened = await _run_to_completion(self._open)
            if opened.key is None:
                self._key_for_new_vault = await _run_to_completion(self.key_source.new_key)

    async def snapshot(self) -> Records | None:
        """The records as the file holds them now, or None when there is no vault file;
        for `doctor`, which must change nothing: read without the lock (a write replaces
        the file atomically, so the old or the new one is read), and a damaged file, or one
        whose key is lost, stays where it is (a VaultError says so). With a read-only key
        source nothing at all is written."""
        if not self.vault_file.exists():
            return None
        return (await _run_to_completion(lambda: self._open(repair=False))).records

    # ---- blocking parts, run in a worker thread under the lock ---------------------------

    def _open(self, *, repair: bool = True) -> _Opened:
        """`repair`: move an unreadable file aside (a transaction), or only say so."""
        try:
            blob = self.vault_file.read_bytes()
        except FileNotFoundError:
            return _Opened(records={}, key=None, header=None)
        except OSError as exc:
            raise VaultError(
                f"The credential vault {self.vault_file} cannot be read ({exc.strerror})",
                next_step="Check the file's owner and permissions",
            ) from exc
        try:
            header, _ = read_header(blob)
        except CorruptVault as exc:
            raise self._unreadable(f"the file is damaged ({exc})", repair=repair) from exc
        if header.source != self.key_source.kind:
            # Not damage: the user switched key source. Leave the file for them to decide.
            raise VaultError(
                f"The credential vault {self.vault_file} was written with the "
                f"{header.source!r} key source, but mcp-bridge is set to {self.key_source.kind!r}",
                next_step=f"Set MCP_BRIDGE_VAULT={header.source} to use it, or move the file "
                "away and log in again",
            )
        try:
            key = self._key_for(header)
        except KeyLost as exc:
            raise self._unreadable(exc.reason, repair=repair) from exc
        except KeyNotFound as exc:
            log.warning("vault key not found, vault left as it is: %s", exc.reason)
            raise VaultKeyNotFound(self.vault_file, exc.reason, exc.next_step) from exc
        try:
            records = decrypt(blob, key)
        except CorruptVault as exc:
            raise self._unreadable(f"the file is damaged ({exc})", repair=repair) from exc
        return _Opened(records=records, key=key, header=header)

    def _key_for(self, header: VaultHeader) -> bytes:
        if self._known_key is not None and self._known_key[1] == header.key_check:
            return self._known_key[0]
        key = self.key_source.open_key(header)
        self._known_key = (key, header.key_check)
        return key

    def _save(self, records: Records, opened: _Opened) -> None:
        if opened.key is None or opened.header is None:
            key, header = self._key_for_new_vault or self.key_source.new_key()
            self._key_for_new_vault = None
            self._known_key = (key, header.key_check)
        else:
            key, header = opened.key, opened.header
            holder = self.key_source.holder()
            if holder is not None and holder != header.holder:
                # A file from before the header recorded it, or a key also reachable from
                # another backend: the header names where this write's key was found.
                header = dataclasses.replace(header, holder=holder)
        try:
            write_atomically(self.vault_file, encrypt(records, header, key))
        except OSError as exc:
            raise VaultError(
                f"The credential vault {self.vault_file} could not be written ({exc.strerror}); "
                "the previous version is intact",
                next_step="Free disk space or fix the directory's permissions, then retry",
            ) from exc

    def _recorded_holder(self) -> KeyHolder | None:
        """Where the file's header says its key is, for describe(); None if it says nothing or
        cannot be read. No lock: an atomic replace shows the old file or the new one."""
        try:
            header, _ = read_header(self.vault_file.read_bytes())
        except (OSError, CorruptVault):
            return None
        return header.holder

    def _unreadable(self, reason: str, *, repair: bool) -> VaultError:
        if repair:
            return self._set_aside(reason)
        return VaultError(
            f"The credential vault {self.vault_file} cannot be read: {reason}",
            next_step="The next login moves it aside and starts a fresh vault; log in again "
            "to each server (`mcp-bridge login NAME`)",
        )

    def _set_aside(self, reason: str) -> VaultUnreadable:
        moved_to = move_aside(self.vault_file, UNREADABLE_LABEL)
        self._known_key = None
        log.warning("vault unreadable (%s); moved to %s", reason, moved_to)
        return VaultUnreadable(reason, moved_to)


async def _run_to_completion(work: Callable[[], T]) -> T:
    """`work()` in a worker thread. If we are cancelled meanwhile, wait for the thread to
    finish before letting the cancellation through, so the caller's lock outlives it."""
    task = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what the caller asked for
        raise
