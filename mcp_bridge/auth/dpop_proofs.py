"""One server's DPoP key put to use. `DpopProofs` makes the proofs: each gets the clock's
time and a new random `jti`, and each origin's latest `DPoP-Nonce` (RFC 9449 §8 from the
authorization server, §9 from the resource) goes into the proofs sent there from then on.
`ServerDpop` keeps the key: read from the vault with the server's other records, made
(and saved at once) by the first login that binds tokens to it, deleted with the login.

The nonces live in memory only: a server that wants one says so again (one extra round
trip), and a nonce is worth nothing after the server rotates it anyway.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from urllib.parse import urlsplit

from mcp_bridge.auth.auth_records import put_dpop_key, read_dpop_key
from mcp_bridge.auth.dpop import DpopKey, build_proof, proof_htu
from mcp_bridge.auth.errors import AuthError
from mcp_bridge.auth.http_step import HttpRequest, HttpResponse, Step
from mcp_bridge.store.base import CredentialVault, VaultTransaction

__all__ = [
    "DPOP_NONCE",
    "MAX_NONCE_CHARS",
    "DpopNonces",
    "DpopProofs",
    "ServerDpop",
    "is_nonce",
    "post_with_proof",
]

log = logging.getLogger(__name__)

DPOP_NONCE = "DPoP-Nonce"
MAX_NONCE_CHARS = 1024  # generous: real nonces are a few dozen characters
_JTI_BYTES = 16  # 128 random bits: unique without a counter (RFC 9449 §11.1)
# RFC 9449 §8.1: nonce = 1*NQCHAR, NQCHAR = %x21 / %x23-5B / %x5D-7E
_NQCHARS = frozenset(chr(c) for c in range(0x21, 0x7F)) - {'"', "\\"}


def is_nonce(value: str) -> bool:
    """Whether a `DPoP-Nonce` value has the RFC 9449 §8.1 syntax (and a sane length)."""
    return 0 < len(value) <= MAX_NONCE_CHARS and all(c in _NQCHARS for c in value)


def _origin(url: str) -> str:
    parts = urlsplit(proof_htu(url))  # in normal form: a default port written out or not
    return f"{parts.scheme}://{parts.netloc}"


class DpopNonces:
    """The latest `DPoP-Nonce` of each origin. Kept apart from the key: a resource may
    send one before there is any key (on the 401 that starts the login)."""

    def __init__(self) -> None:
        self._by_origin: dict[str, str] = {}

    def remember(self, url: str, nonce: str) -> bool:
        """Keep `nonce` for the origin of `url` (the latest wins); True when it differs
        from the one kept. A value that is no nonce is ignored (logged)."""
        origin = _origin(url)
        if not is_nonce(nonce):
            log.warning("ignoring a malformed DPoP-Nonce from %s", origin)
            return False
        if self._by_origin.get(origin) == nonce:
            return False
        self._by_origin[origin] = nonce
        return True

    def for_url(self, url: str) -> str | None:
        return self._by_origin.get(_origin(url))


class DpopProofs:
    """Proofs signed with `key`, naming the nonces in `nonces`; see the module docstring."""

    def __init__(
        self, key: DpopKey, nonces: DpopNonces, *, clock: Callable[[], float] = time.time
    ) -> None:
        self.key = key
        self.nonces = nonces
        self._clock = clock

    def proof(self, htm: str, url: str, access_token: str | None = None) -> str:
        """A fresh proof for a `htm` request to `url`, bound to `access_token` when it
        goes with one (requests to the resource)."""
        return build_proof(
            self.key,
            htm,
            url,
            self._clock(),
            secrets.token_urlsafe(_JTI_BYTES),
            self.nonces.for_url(url),
            access_token,
        )


def post_with_proof(
    make_request: Callable[[], HttpRequest], dpop: DpopProofs | None
) -> Step[HttpResponse]:
    """A POST to an authorization server's endpoint (`make_request()`), with a DPoP proof
    when `dpop` is given. The AS's nonce is kept from any answer; a 400 `use_dpop_nonce`
    that brings one (RFC 9449 §8) gets the request once more, with a new proof naming it.
    A second such refusal raises AuthError: the AS refuses the nonce it has just given."""
    if dpop is None:
        return (yield make_request())
    for attempt in (1, 2):
        request = make_request()
        proof = dpop.proof(request.method, request.url)
        response = yield replace(request, headers=(*request.headers, ("DPoP", proof)))
        nonce = response.header(DPOP_NONCE)
        if nonce is not None:
            dpop.nonces.remember(request.url, nonce)
        if not (response.status == 400 and _error_of(response) == "use_dpop_nonce"):
            return response
        if nonce is None or attempt == 2:
            break
    raise AuthError(
        f"The authorization server at {request.url} keeps asking for a DPoP nonce "
        "(use_dpop_nonce) without accepting the one it gave",
        next_step="Try again; if it repeats, tell the server's owner",
    )


def _error_of(response: HttpResponse) -> object:
    doc = response.json_or_none()
    return doc.get("error") if isinstance(doc, dict) else None


class ServerDpop:
    """The DPoP key of the server filed under `server_key`, and its nonces; see the module
    docstring. `proofs` is None while the vault holds no key."""

    def __init__(
        self, server_key: str, vault: CredentialVault, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._server_key = server_key
        self._vault = vault
        self._clock = clock
        self.nonces = DpopNonces()
        self.proofs: DpopProofs | None = None

    def read(self, txn: VaultTransaction) -> DpopProofs | None:
        """Adopt the key `txn` holds (or its absence), keeping the same proofs object
        while the key is the same."""
        key = read_dpop_key(txn, self._server_key)
        if key is None:
            self.proofs = None
        elif self.proofs is None or self.proofs.key != key:
            self.proofs = DpopProofs(key, self.nonces, clock=self._clock)
        return self.proofs

    async def ensure(self) -> DpopProofs:
        """The key's proofs, the key made and saved first when the vault holds none (for
        a login about to bind tokens to it: saved before the grant, so the tokens are
        never kept without their key)."""
        async with self._vault.transaction() as txn:
            kept = self.read(txn)
            if kept is None:
                key = DpopKey.generate()
                put_dpop_key(txn, self._server_key, key)
        # Adopted once the transaction has written it, not before.
        self.proofs = kept or DpopProofs(key, self.nonces, clock=self._clock)
        return self.proofs

    def forget(self) -> None:
        self.proofs = None
