"""The vault file's bytes: header, AES-GCM envelope, records. Pure: no files, no keyring.

Layout (all of it authenticated; the header is the AES-GCM associated data)::

    MAGIC (8 bytes) | header length (4 bytes, big-endian) | header (JSON, ASCII)
    | nonce (12 bytes) | AES-256-GCM ciphertext of the records JSON, with its 16-byte tag

The header says which key source wrote the file, the KDF parameters for a passphrase, and a
key check value (an HMAC of a constant under the data key). The check value lets a reader
tell "this is the wrong key" (a wrong passphrase, a replaced keyring item) from "the file is
damaged", which need different advice. It reveals nothing a GCM tag does not already: both
let an attacker test a key guess, at the cost of the KDF.

For a keyring vault the header also records where its key is (`key_holder`: the keyring
backend class and the item's service and username), so a process that does not find the key
can say where it is instead of taking the vault for lost (docs/keyrings.md §6).

Versions: `format` is the major version; a reader refuses any other, so it changes only for
a change old readers must not misread. `format_minor` counts additions old readers ignore
safely: 1 adds `key_holder`. Raising `format` for it would have made every older mcp-bridge
sharing the file take it for damaged and move it aside.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import struct
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeGuard

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"MCPBVLT\x01"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # NIST SP 800-38D §8.2: 96-bit random nonces
FORMAT_VERSION = 1
FORMAT_MINOR = 1  # what this version writes; absent means 0
_LENGTH = struct.Struct(">I")
_MAX_HEADER_BYTES = 4096
_KEY_CHECK_LABEL = b"mcp-bridge vault key check v1"

# namespace -> key -> record; records are JSON objects (Any: whatever the auth layer stored)
Records: TypeAlias = dict[str, dict[str, dict[str, Any]]]


class CorruptVault(Exception):
    """The bytes are not a vault this version can read, or they were altered."""


# The most a header may ask of scrypt. It is read before anything in the file can be
# checked, so these bound what a crafted file costs us: what mcp-bridge writes (n = 2**17,
# r = 8, p = 1; 128 MiB) plus a margin for a stronger default later, and never more than
# 1 GiB of memory (scrypt needs 128 * r * n bytes) or 4 sequential passes of it.
MAX_SCRYPT_LOG2_N = 20
MAX_SCRYPT_R = 16
MAX_SCRYPT_P = 4
MAX_SCRYPT_MEMORY_BYTES = 2**30


@dataclass(frozen=True, slots=True)
class ScryptParams:
    """RFC 7914 parameters for deriving the data key from a passphrase."""

    salt: bytes = field(repr=False)
    log2_n: int = 17  # n = 2**17, r = 8: 128 MiB and ~0.5 s on a 2-core test machine
    r: int = 8
    p: int = 1

    def is_sane(self) -> bool:
        """Within the caps above, and not weaker than any version of mcp-bridge wrote."""
        return (
            16 <= len(self.salt) <= 64
            and 10 <= self.log2_n <= MAX_SCRYPT_LOG2_N
            and 1 <= self.r <= MAX_SCRYPT_R
            and 1 <= self.p <= MAX_SCRYPT_P
            and 128 * self.r * 2**self.log2_n <= MAX_SCRYPT_MEMORY_BYTES
        )

    @classmethod
    def fresh(cls, log2_n: int = 17) -> ScryptParams:
        return cls(salt=os.urandom(16), log2_n=log2_n)


# The most a key holder field may hold: a class path or an item name, printed in messages.
_MAX_HOLDER_FIELD = 200


@dataclass(frozen=True, slots=True)
class KeyHolder:
    """Where a keyring vault's key was when the file was last written."""

    backend: str  # module and class, e.g. keyring.backends.SecretService.Keyring
    service: str
    username: str

    def item(self) -> str:
        return f"{self.service!r}/{self.username!r}"

    def to_doc(self) -> dict[str, str]:
        return {"backend": self.backend, "service": self.service, "username": self.username}

    def is_recordable(self) -> bool:
        """Whether from_doc would read it back. A header is written only with a holder that
        is: one its reader refused would make the file look damaged and be moved aside."""
        return all(_holder_field_ok(text) for text in self.to_doc().values())

    @classmethod
    def from_doc(cls, doc: object) -> KeyHolder:
        if not isinstance(doc, dict):
            raise CorruptVault("the key holder in its header is damaged")
        values: list[str] = []
        for name in ("backend", "service", "username"):
            text = doc.get(name)
            if not _holder_field_ok(text):
                raise CorruptVault(f"the key holder's {name} in its header is damaged")
            values.append(text)
        return cls(*values)


def _holder_field_ok(text: object) -> TypeGuard[str]:
    # Read before anything in the file is authenticated, and printed in messages: only short
    # printable ASCII, so a crafted header cannot write escapes to a terminal.
    return (
        isinstance(text, str)
        and 0 < len(text) <= _MAX_HOLDER_FIELD
        and text.isascii()
        and text.isprintable()
    )


@dataclass(frozen=True, slots=True)
class VaultHeader:
    source: str  # the KeySource.kind that wrote the file
    key_check: bytes = field(repr=False)
    kdf: ScryptParams | None = None
    holder: KeyHolder | None = None  # keyring vaults; None in files from before format_minor 1

    def to_bytes(self) -> bytes:
        doc: dict[str, object] = {
            "format": FORMAT_VERSION,
            "format_minor": FORMAT_MINOR,
            "source": self.source,
            "key_check": _b64(self.key_check),
        }
        if self.holder is not None and self.holder.is_recordable():
            doc["key_holder"] = self.holder.to_doc()
        if self.kdf is not None:
            doc["kdf"] = {
                "name": "scrypt",
                "salt": _b64(self.kdf.salt),
                "log2_n": self.kdf.log2_n,
                "r": self.kdf.r,
                "p": self.kdf.p,
            }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def from_bytes(cls, raw: bytes) -> VaultHeader:
        try:
            doc = json.loads(raw.decode("ascii"))
            if not isinstance(doc, dict) or doc.get("format") != FORMAT_VERSION:
                raise CorruptVault(f"unknown vault format {doc.get('format')!r}")
            kdf = None
            if (kdf_doc := doc.get("kdf")) is not None:
                if kdf_doc.get("name") != "scrypt":
                    raise CorruptVault(f"unknown key derivation {kdf_doc.get('name')!r}")
                kdf = ScryptParams(
                    salt=_unb64(kdf_doc["salt"]),
                    log2_n=int(kdf_doc["log2_n"]),
                    r=int(kdf_doc["r"]),
                    p=int(kdf_doc["p"]),
                )
                if not kdf.is_sane():
                    raise CorruptVault(
                        f"the key derivation parameters in its header (scrypt n=2**{kdf.log2_n},"
                        f" r={kdf.r}, p={kdf.p}) are out of range: the header is damaged or "
                        "hostile"
                    )
            source = doc["source"]
            if not isinstance(source, str):
                raise CorruptVault("the header names no key source")
            holder_doc = doc.get("key_holder")
            holder = None if holder_doc is None else KeyHolder.from_doc(holder_doc)
            return cls(source=source, key_check=_unb64(doc["key_check"]), kdf=kdf, holder=holder)
        except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CorruptVault(f"the header is damaged ({type(exc).__name__})") from exc


def key_check(key: bytes) -> bytes:
    return hmac.digest(key, _KEY_CHECK_LABEL, hashlib.sha256)[:16]


def key_matches(header: VaultHeader, key: bytes) -> bool:
    return hmac.compare_digest(header.key_check, key_check(key))


def read_header(blob: bytes) -> tuple[VaultHeader, int]:
    """The header and where the nonce starts. Raises CorruptVault."""
    if not blob.startswith(MAGIC):
        raise CorruptVault("it does not start with the mcp-bridge vault signature")
    start = len(MAGIC) + _LENGTH.size
    if len(blob) < start:
        raise CorruptVault("it is truncated")
    (length,) = _LENGTH.unpack_from(blob, len(MAGIC))
    if length > _MAX_HEADER_BYTES or len(blob) < start + length + NONCE_BYTES + 16:
        raise CorruptVault("it is truncated or its header length is wrong")
    return VaultHeader.from_bytes(blob[start : start + length]), start + length


def decrypt(blob: bytes, key: bytes) -> Records:
    """The records in `blob`; the caller has checked the key against the header.
    Raises CorruptVault if the file was altered or is not valid."""
    _, body = read_header(blob)
    nonce = blob[body : body + NONCE_BYTES]
    try:
        plain = AESGCM(key).decrypt(nonce, blob[body + NONCE_BYTES :], blob[:body])
    except InvalidTag as exc:
        raise CorruptVault("its contents fail the integrity check") from exc
    try:
        doc = json.loads(plain)
    except ValueError as exc:  # authentic but unparsable: written by a broken version
        raise CorruptVault("its decrypted contents are not JSON") from exc
    records = doc.get("records") if isinstance(doc, dict) else None
    if not isinstance(records, dict) or not all(
        isinstance(ns, dict) and all(isinstance(r, dict) for r in ns.values())
        for ns in records.values()
    ):
        raise CorruptVault("its decrypted contents have the wrong shape")
    return records


def encrypt(records: Records, header: VaultHeader, key: bytes) -> bytes:
    """A complete vault file holding `records` under `key`, with a fresh random nonce."""
    raw_header = header.to_bytes()
    aad = MAGIC + _LENGTH.pack(len(raw_header)) + raw_header
    nonce = os.urandom(NONCE_BYTES)
    plain = json.dumps({"records": records}, separators=(",", ":")).encode("utf-8")
    return aad + nonce + AESGCM(key).encrypt(nonce, plain, aad)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise TypeError("expected base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError("bad base64") from exc
