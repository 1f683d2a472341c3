"""How the auth layer files its records in the credential vault (store/base.py): which
namespace, which key, which JSON, and what is refused on the way back. Knows records inside
an open VaultTransaction; not HTTP, not time, not refresh policy.

    "servers"  canonical MCP URL       -> AuthorizationContext.to_json(): where to refresh
                                          after a restart without discovery (the SDK sends
                                          the user to the browser: docs/sdk-gaps.md #1, #2)
    "clients"  issuer                  -> ClientRegistration (keyed by issuer),
                                          and the issuer's AuthServerQuirks beside it
    "tokens"   f"{issuer} {resource}"  -> TokenSet + "received_at" (one audience)
    "dpop_keys" canonical MCP URL      -> the server's DPoP private key as a JWK (dpop.py):
                                          its DPoP-bound tokens are useless without it

A damaged or mismatched record reads as absent (and is logged): the answer to it is a new
login, which overwrites it. Quirks are the exception: unreadable ones are the RFC defaults
(records from before they were kept have none), as a wrong guess costs only a retry.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace

from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.discovery import AuthorizationContext, AuthServerQuirks
from mcp_bridge.auth.dpop import DpopKey
from mcp_bridge.auth.errors import AuthError, AuthResponseInvalid
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.store.base import VaultTransaction

__all__ = [
    "CLIENTS",
    "DPOP_KEYS",
    "SERVERS",
    "TOKENS",
    "StoredClient",
    "StoredTokens",
    "delete_server",
    "put_client",
    "put_context",
    "put_dpop_key",
    "put_quirks",
    "put_tokens",
    "read_client",
    "read_context",
    "read_dpop_key",
    "read_quirks",
    "read_stored_client",
    "read_tokens",
    "tokens_key",
]

log = logging.getLogger(__name__)

SERVERS = "servers"
CLIENTS = "clients"
TOKENS = "tokens"
DPOP_KEYS = "dpop_keys"
_RECEIVED_AT = "received_at"  # our field next to the TokenSet's own in the vault record
_REGISTERED_SCOPES = "x_mcp_bridge_scopes"  # ours, next to the ClientRegistration's fields
_QUIRKS = "x_mcp_bridge_quirks"  # ours too: how the issuer wants its requests


def tokens_key(issuer: str, resource: str) -> str:
    return f"{issuer} {resource}"


@dataclass(frozen=True, slots=True)
class StoredTokens:
    tokens: TokenSet
    received_at: float | None  # epoch seconds; None in records from before it was kept


def read_context(
    txn: VaultTransaction, server_key: str, *, mcp_url: str, policy: UrlPolicy
) -> AuthorizationContext | None:
    doc = txn.get(SERVERS, server_key)
    if doc is None:
        return None
    try:
        return AuthorizationContext.from_vault(doc, mcp_url=mcp_url, policy=policy)
    except AuthError as exc:
        log.warning("ignoring the stored authorization context of %s: %s", mcp_url, exc)
        return None


def put_context(txn: VaultTransaction, server_key: str, context: AuthorizationContext) -> None:
    txn.put(SERVERS, server_key, context.to_json())


def read_client(txn: VaultTransaction, issuer: str) -> ClientRegistration | None:
    doc = txn.get(CLIENTS, issuer)
    if doc is None:
        return None
    try:
        client = ClientRegistration.from_json(doc)
    except AuthResponseInvalid:
        log.warning("ignoring a damaged client registration for %s", issuer)
        return None
    return client if client.is_for(issuer) else None  # never another AS's (MCP)


@dataclass(frozen=True, slots=True)
class StoredClient:
    """A kept registration and the scopes it was registered with (None: not recorded).
    Some ASes (the SDK's) grant only scopes named at registration, so a login that needs
    more registers again rather than be refused. `quirks`: what the issuer was found to
    need, for the login to start with (build_authorization_request)."""

    registration: ClientRegistration
    scopes: tuple[str, ...] | None = None
    quirks: AuthServerQuirks = field(default_factory=AuthServerQuirks)

    def covers(self, scopes: tuple[str, ...]) -> bool:
        return self.scopes is None or set(scopes) <= set(self.scopes)


def read_stored_client(txn: VaultTransaction, issuer: str) -> StoredClient | None:
    registration = read_client(txn, issuer)
    if registration is None:
        return None
    doc = txn.get(CLIENTS, issuer) or {}
    scopes = doc.get(_REGISTERED_SCOPES)
    quirks = AuthServerQuirks.from_json(doc.get(_QUIRKS))
    if isinstance(scopes, list) and all(isinstance(scope, str) for scope in scopes):
        return StoredClient(registration, tuple(scopes), quirks)
    return StoredClient(registration, quirks=quirks)


def read_quirks(txn: VaultTransaction, issuer: str) -> AuthServerQuirks:
    """What `issuer` was found to need; the RFC defaults when nothing (readable) is kept."""
    doc = txn.get(CLIENTS, issuer) or {}
    return AuthServerQuirks.from_json(doc.get(_QUIRKS))


def put_client(
    txn: VaultTransaction, client: ClientRegistration, scopes: tuple[str, ...] | None = None
) -> None:
    """Keep a client registration (and the scopes it was made for, when given). CIMD and
    pre-registered ones too: a login obtains them afresh from the config, but a refresh in a
    later process must send the client id its grant was issued to (RFC 6749 §6). The
    issuer's quirks stay whatever the client: they belong to the AS."""
    record = client.to_json()
    kept = txn.get(CLIENTS, client.issuer) or {}
    if scopes is None:
        if kept.get("client_id") == client.client_id:
            scopes_doc = kept.get(_REGISTERED_SCOPES)
            if scopes_doc is not None:
                record[_REGISTERED_SCOPES] = scopes_doc
    else:
        record[_REGISTERED_SCOPES] = list(scopes)
    if _QUIRKS in kept:
        record[_QUIRKS] = kept[_QUIRKS]
    txn.put(CLIENTS, client.issuer, record)


def put_quirks(txn: VaultTransaction, issuer: str, quirks: AuthServerQuirks) -> None:
    """Keep what `issuer` was found to need, beside its client registration. Without one
    there is nowhere to keep them (a record of quirks alone would read as a damaged
    registration); the next grant then learns them again with one retry."""
    kept = txn.get(CLIENTS, issuer)
    if kept is not None and AuthServerQuirks.from_json(kept.get(_QUIRKS)) != quirks:
        txn.put(CLIENTS, issuer, {**kept, _QUIRKS: quirks.to_json()})


def read_tokens(txn: VaultTransaction, context: AuthorizationContext) -> StoredTokens | None:
    doc = txn.get(TOKENS, tokens_key(context.issuer, context.resource))
    if doc is None:
        return None
    try:
        tokens = TokenSet.from_json(doc)
    except AuthResponseInvalid:
        log.warning("ignoring damaged stored tokens for %s", context.resource)
        return None
    # MCP: a token is only ever sent to the resource (and from the issuer) it is for.
    if tokens.issuer != context.issuer or tokens.resource != context.resource:
        log.warning("ignoring stored tokens issued for another resource or issuer")
        return None
    received = doc.get(_RECEIVED_AT)
    # The next grant starts the way the issuer's last one went through (token_endpoint.py).
    tokens = replace(tokens, quirks=read_quirks(txn, context.issuer))
    return StoredTokens(tokens, float(received) if isinstance(received, int | float) else None)


def put_tokens(txn: VaultTransaction, tokens: TokenSet, received_at: float) -> None:
    """Keep the tokens, and beside the issuer's registration the quirks their grant was
    sent with: what worked is what later grants, and later processes, start with."""
    record = {**tokens.to_json(), _RECEIVED_AT: received_at}
    txn.put(TOKENS, tokens_key(tokens.issuer, tokens.resource), record)
    put_quirks(txn, tokens.issuer, tokens.quirks)


def read_dpop_key(txn: VaultTransaction, server_key: str) -> DpopKey | None:
    doc = txn.get(DPOP_KEYS, server_key)
    if doc is None:
        return None
    try:
        return DpopKey.from_jwk(doc)
    except AuthResponseInvalid:
        log.warning("ignoring the damaged DPoP key of %s", server_key)
        return None


def put_dpop_key(txn: VaultTransaction, server_key: str, key: DpopKey) -> None:
    txn.put(DPOP_KEYS, server_key, key.to_jwk())


def delete_server(
    txn: VaultTransaction, server_key: str, context: AuthorizationContext | None
) -> None:
    """Logout: the server's context, tokens and DPoP key; the issuer's registration stays."""
    txn.delete(SERVERS, server_key)
    txn.delete(DPOP_KEYS, server_key)
    if context is not None:
        txn.delete(TOKENS, tokens_key(context.issuer, context.resource))
