"""The OS keyring as a KeySource: one data key, service `mcp-bridge`, written once.

Only the 44-character key goes in the keyring: the Windows credential blob limit (2560
bytes) is smaller than one token set, and rewriting keychain items on every refresh makes
macOS ask again (docs/keyrings.md §3). Token rotation never touches the keyring.

Three defences, each against a failure seen in testing or reported (docs/keyrings.md §2):
- Every call runs in its own daemon thread with a deadline: a locked desktop keyring can
  block forever on an unlock prompt, and a stuck daemon thread does not hold up exit.
- The backend is probed once by writing, reading back and deleting a uniquely named item:
  keyring's `null` backend "stores" nothing, a locked collection fails, priority proves
  nothing. A fixed probe name would race with a second process probing at the same time.
- The backend is chosen fresh (env, config file, then highest priority), never through
  keyring.get_keyring(), which caches whatever it found first in the process.

The vault header records which backend and item hold the key. An existing vault whose key
this process does not find (absent, or another key in the item) is never taken for lost: a
keyring that answers "no such item" may be another backend or another session than the one
holding the key, or may have missed one read. Taking it for lost moved the vault aside, and
two environments with different backends then did it to each other (docs/keyrings.md §6).

Backends that keep secrets in a file of their own (keyrings.alt's plaintext and encrypted
files) are refused however they were chosen, and so is keyring's chainer when it would
reach one: the README promises never to fall back to a file silently, and
MCP_BRIDGE_VAULT=keyfile or passphrase are the knowing ways to use a file.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import stat
import threading
import uuid
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from mcp_bridge.errors import VaultError
from mcp_bridge.store.key_sources import PASSPHRASE_ENV, KeyNotFound, decode_key, encode_key
from mcp_bridge.store.vault_format import (
    KEY_BYTES,
    KeyHolder,
    VaultHeader,
    key_check,
    key_matches,
)

log = logging.getLogger(__name__)

SERVICE = "mcp-bridge"
KEY_USERNAME = "vault-key"
PROBE_SERVICE = "mcp-bridge:probe"
DEFAULT_KEYRING_TIMEOUT_S = 10.0

NEXT_STEP_NO_KEYRING = (
    "Start or unlock a Secret Service such as gnome-keyring (on a desktop, log in to it), or "
    f"opt in to a passphrase with MCP_BRIDGE_VAULT=passphrase and {PASSPHRASE_ENV} set, or to a "
    "plaintext-equivalent key file with MCP_BRIDGE_VAULT=keyfile"
)
NEXT_STEP_KEY_ELSEWHERE = (
    "Start or unlock the keyring that holds the vault's key, or run mcp-bridge where it is "
    "reachable (such as the desktop session that stored it); `mcp-bridge status` shows where "
    "the vault's key is"
)
# Backends reached over the D-Bus session bus: without one, this process cannot see them.
_DBUS_BACKENDS = ("SecretService", "libsecret", "kwallet")

T = TypeVar("T")


class KeyringLike(Protocol):
    """The three calls we use from a keyring backend. Test doubles implement this directly:
    subclassing keyring's KeyringBackend registers the subclass as a backend for the whole
    process, and it may then be picked."""

    def get_password(self, service: str, username: str) -> str | None: ...

    def set_password(self, service: str, username: str, password: str) -> None: ...

    def delete_password(self, service: str, username: str) -> None: ...


class KeyringUnusable(VaultError):
    """The OS keyring is missing, locked, stuck, or only pretends to store secrets.
    `vault_key`: for an existing vault, where its key is (`seen`: what this process sees
    instead), so the message points there before the alternatives, which would start anew."""

    def __init__(self, why: str, *, vault_key: KeyHolder | None = None, seen: str = "") -> None:
        if vault_key is None:
            what = f"The OS keyring cannot hold the vault key: {why}"
            next_step = NEXT_STEP_NO_KEYRING
        else:
            what = (
                f"The OS keyring cannot be used: {why}. The vault's key is in the item "
                f"{vault_key.item()} of the keyring backend {vault_key.backend}; {seen}"
            )
            # The usual alternatives start a new vault: this one needs its key.
            otherwise = NEXT_STEP_NO_KEYRING[0].lower() + NEXT_STEP_NO_KEYRING[1:]
            next_step = f"{NEXT_STEP_KEY_ELSEWHERE}. Otherwise, for a new vault: {otherwise}"
        super().__init__(what, next_step=next_step)
        self.why = why
        self.vault_key = vault_key


def find_session_bus(environ: MutableMapping[str, str] = os.environ) -> None:
    """Point DBUS_SESSION_BUS_ADDRESS at the user's session bus when a host left it out.

    Desktop hosts launch servers with a thin environment (HOME, PATH, USER...: see
    docs/desktop-hosts.md), so on Linux the Secret Service looks absent. systemd-logind
    sessions put the bus at $XDG_RUNTIME_DIR/bus, i.e. /run/user/<uid>/bus: used only when it
    is a socket this user owns, and never over an address the environment already gives."""
    if "DBUS_SESSION_BUS_ADDRESS" in environ or not hasattr(os, "getuid"):
        return
    runtime = environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.getuid()}"
    bus = os.path.join(runtime, "bus")
    try:
        status = os.stat(bus)
    except OSError:
        return
    if stat.S_ISSOCK(status.st_mode) and status.st_uid == os.getuid():
        environ["DBUS_SESSION_BUS_ADDRESS"] = f"unix:path={bus}"


def detect_backend() -> KeyringLike:
    """The backend keyring would pick right now, without its process-wide cache.
    Raises KeyringUnusable when keyring itself refuses (e.g. a bad PYTHON_KEYRING_BACKEND)."""
    import keyring.backend
    import keyring.backends.fail
    import keyring.core

    find_session_bus()

    try:
        chosen = keyring.core.load_env() or keyring.core.load_config() or _most_viable()
    except (RuntimeError, ImportError, AttributeError, ValueError) as exc:
        # load_keyring raises RuntimeError for a non-viable PYTHON_KEYRING_BACKEND, and
        # ImportError/AttributeError for a misspelt one; none of them is a KeyringError.
        raise KeyringUnusable(f"keyring could not load a backend ({exc})") from exc
    return chosen


def _most_viable() -> KeyringLike:
    import keyring.backend
    import keyring.backends.chainer
    import keyring.backends.fail

    # get_all_keyring() is cached for the life of the process, with the backends that were
    # viable at its first call: a process that looked before the session bus was up would
    # never see the Secret Service. Here we only use it to load the entry-point plugins, and
    # ask each backend class afresh whether it can run.
    keyring.backend.get_all_keyring()
    candidates: list[keyring.backend.KeyringBackend] = []
    for backend_class in keyring.backend.KeyringBackend.get_viable_backends():
        if issubclass(backend_class, keyring.backends.chainer.ChainerBackend):
            # It outranks every backend once two are viable, then writes to the next one
            # when the first fails: with keyrings.alt installed, to a file. Its best member
            # on its own is the better choice, and is judged as itself.
            continue
        try:
            candidates.append(backend_class())
        except TypeError:  # a backend that needs constructor arguments: not for us
            continue
    fallback = keyring.backends.fail.Keyring()  # type: ignore[no-untyped-call]
    best: KeyringLike = max(candidates, key=keyring.backend.by_priority, default=fallback)
    return best


def refuses_to_store(backend: object) -> str | None:
    """Why a backend is known not to keep secrets, or not to be chosen silently, or None.
    The probe catches the rest."""
    import keyring.backends.chainer
    import keyring.backends.fail
    import keyring.backends.null

    if isinstance(backend, keyring.backends.null.Keyring):
        return "the `null` backend is selected, which silently discards everything"
    if isinstance(backend, keyring.backends.fail.Keyring):
        return "no keyring backend is available (no Secret Service, Keychain or Credential Manager)"
    if _keeps_secrets_in_a_file(backend):
        return (
            f"the selected backend {_class_name(backend)} (from keyrings.alt) keeps secrets in "
            "a file of its own, not in an OS keyring, and mcp-bridge never falls back to a "
            "file without being told"
        )
    if isinstance(backend, keyring.backends.chainer.ChainerBackend):
        refused = [_class_name(m) for m in backend.backends if refuses_to_store(m) is not None]
        if refused:
            return (
                f"the selected `chainer` backend would fall back to {', '.join(refused)} "
                "whenever the OS keyring fails, and mcp-bridge never falls back to a file "
                "without being told"
            )
    return None


# keyrings.alt's file backends (file.PlaintextKeyring, file.EncryptedKeyring,
# Windows.EncryptedKeyring) all derive from this class. Judged by name: keyrings.alt is no
# dependency of ours, and importing it only to test a class would register its backends.
_FILE_BACKED = ("keyrings.alt.file_base", "FileBacked")


def _keeps_secrets_in_a_file(backend: object) -> bool:
    return any((cls.__module__, cls.__qualname__) == _FILE_BACKED for cls in type(backend).__mro__)


def _class_name(backend: object) -> str:
    return f"{type(backend).__module__}.{type(backend).__qualname__}"


def call_with_deadline(call: Callable[[], T], *, timeout_s: float, what: str) -> T:
    """Run `call` in a fresh daemon thread; KeyringUnusable if it takes over `timeout_s`.
    The thread is abandoned, not killed, on timeout: it cannot block interpreter exit."""
    future: concurrent.futures.Future[T] = concurrent.futures.Future()

    def run() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            future.set_result(call())
        except BaseException as exc:  # handed to the waiting caller, not swallowed
            future.set_exception(exc)

    threading.Thread(target=run, name="mcp-bridge-keyring", daemon=True).start()
    try:
        return future.result(timeout=timeout_s)
    except concurrent.futures.TimeoutError:
        raise KeyringUnusable(
            f"it did not answer within {timeout_s:.0f} s while {what} (a locked keyring "
            "waiting on an unlock prompt?)"
        ) from None


@dataclass
class KeyringKeySource:
    """The data key as one keyring item (`mcp-bridge` / `vault-key`), base64 text.

    `backend=None` detects the backend on first use. Probing happens once per object.
    `read_only` (`doctor`): nothing is ever written to the keyring, no probe item and no new
    key; the vault's key read back and matching the vault header is proof enough that the
    backend stores secrets.
    """

    backend: KeyringLike | None = None
    username: str = KEY_USERNAME
    timeout_s: float = DEFAULT_KEYRING_TIMEOUT_S
    read_only: bool = False
    _probed: bool = field(default=False, init=False, repr=False)

    kind = "keyring"

    def describe(self) -> str:
        which = "detected on first use" if self.backend is None else _class_name(self.backend)
        return (
            f"the OS keyring ({which}), item {SERVICE!r}/{self.username!r}; protects a copied "
            "vault file, not against programs running as you"
        )

    def new_key(self) -> tuple[bytes, VaultHeader]:
        """Only ever called for a vault file that does not exist: for an existing one a key
        missing here is never replaced (open_key)."""
        if self.read_only:
            raise VaultError("mcp-bridge was asked to change nothing, so it makes no vault key")
        key = self._read_key()
        if key is None:
            key = os.urandom(KEY_BYTES)
            self._call(
                lambda b: b.set_password(SERVICE, self.username, encode_key(key)), "storing the key"
            )
        return key, VaultHeader(self.kind, key_check(key), holder=self.holder())

    def open_key(self, header: VaultHeader) -> bytes:
        try:
            key = self._read_key()
        except KeyringUnusable as exc:
            if header.holder is None:
                raise
            raise KeyringUnusable(
                exc.why, vault_key=header.holder, seen=self._seen(header.holder)
            ) from exc
        if key is None:
            raise self._not_here(header, "has no key")
        if not key_matches(header, key):
            raise self._not_here(header, "holds a different key")
        return key

    def has_key(self) -> bool:
        """Whether the keyring holds a vault key under our item; KeyringUnusable when the
        keyring cannot be asked (no backend, locked, stuck)."""
        return self._read_key() is not None

    def holder(self) -> KeyHolder | None:
        if self.backend is None:  # nothing read or stored yet
            return None
        return KeyHolder(_class_name(self.backend), SERVICE, self.username)

    def _not_here(self, header: VaultHeader, found: str) -> KeyNotFound:
        """The error for a key that is not in this process's keyring: where it should be,
        what this process sees instead, and why they might differ."""
        item = f"{SERVICE!r}/{self.username!r}"
        if header.holder is None:
            where = "it does not say where its key is (an older mcp-bridge wrote it), and"
        else:
            where = (
                f"its key is in the item {header.holder.item()} of the keyring backend "
                f"{header.holder.backend}, but"
            )
        return KeyNotFound(
            f"{where} {self._seen(header.holder)}, whose item {item} {found}",
            next_step=NEXT_STEP_KEY_ELSEWHERE,
        )

    def _seen(self, recorded: KeyHolder | None) -> str:
        if self.backend is None:  # keyring could not load one (a bad PYTHON_KEYRING_BACKEND)
            return "this process found no keyring backend"
        here = KeyHolder(_class_name(self.backend), SERVICE, self.username)
        hint = "" if recorded is None else _why_not_the_recorded_one(recorded, here)
        return f"this process sees the keyring backend {here.backend}{hint}"

    def probe(self) -> None:
        """Prove the backend stores secrets: write, read back and delete a unique item."""
        backend = self._backend()
        service, username, value = PROBE_SERVICE, uuid.uuid4().hex, uuid.uuid4().hex

        def round_trip() -> str | None:
            backend.set_password(service, username, value)
            try:
                return backend.get_password(service, username)
            finally:
                try:
                    backend.delete_password(service, username)
                except Exception as exc:  # a leftover probe item is harmless; say so
                    log.debug("could not delete keyring probe item: %s", type(exc).__name__)

        read_back = self._guarded(round_trip, "probing it")
        if read_back != value:
            got = "nothing" if read_back is None else "a different value"
            raise KeyringUnusable(f"it pretends to store secrets: a probe item read back as {got}")
        self._probed = True

    def _read_key(self) -> bytes | None:
        text = self._call(lambda b: b.get_password(SERVICE, self.username), "reading the key")
        key = decode_key(text)
        if text is not None and key is None:
            log.warning("the vault key item in the OS keyring is malformed; treating it as absent")
        return key

    def _backend(self) -> KeyringLike:
        if self.backend is None:
            self.backend = detect_backend()
        if (why := refuses_to_store(self.backend)) is not None:
            raise KeyringUnusable(why)
        return self.backend

    def _call(self, op: Callable[[KeyringLike], T], what: str) -> T:
        if not self._probed and not self.read_only:
            self.probe()
        backend = self._backend()
        return self._guarded(lambda: op(backend), what)

    def _guarded(self, call: Callable[[], T], what: str) -> T:
        import keyring.errors

        try:
            return call_with_deadline(call, timeout_s=self.timeout_s, what=what)
        except KeyringUnusable:
            raise
        except keyring.errors.KeyringLocked as exc:
            raise KeyringUnusable("it is locked") from exc
        except Exception as exc:
            # Backends raise anything: pywintypes.error, secretstorage and jeepney errors,
            # OSError for a dead bus (docs/keyrings.md §2).
            raise KeyringUnusable(f"{what} failed: {_describe_exception(exc)}") from exc


def _why_not_the_recorded_one(recorded: KeyHolder, here: KeyHolder) -> str:
    """A guess, in parentheses, at why this process does not see the keyring item the vault
    header records; the usual causes, cheapest to check first."""
    if (recorded.service, recorded.username) != (here.service, here.username):
        return " (and looks for another item: its name follows the vault's path; was it moved?)"
    if recorded.backend == here.backend:
        return (
            " (the same backend: another instance of it, in another D-Bus session or for "
            "another user, or one that missed a read?)"
        )
    if any(name in recorded.backend for name in _DBUS_BACKENDS) and (
        "DBUS_SESSION_BUS_ADDRESS" not in os.environ
    ):
        return " (no D-Bus session?)"
    return " (PYTHON_KEYRING_BACKEND, keyringrc.cfg or the installed keyring packages differ?)"


def _describe_exception(exc: BaseException) -> str:
    name = type(exc).__qualname__
    lines = str(exc).splitlines()
    # Backend errors say things like "Failed to unlock the collection!", which helps the
    # user. They describe the call, not the value; cut to one short line all the same.
    return f"{name}: {lines[0][:200]}" if lines else name
