"""From `mcp-bridge run` settings to a started remote link and the translator to use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from mcp_bridge.bridge.session import Passthrough, RemoteLink, Translator
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.protocol import META_PROTOCOL_VERSION, MODERN_VERSIONS, Era, TransportKind
from mcp_bridge.remote.base import Deliver


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    url: str
    transport: TransportKind = TransportKind.AUTO
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets


async def open_remote(settings: RemoteSettings, first: JsonObject, deliver: Deliver) -> RemoteLink:
    raise NotImplementedError  # wired to remote.detect once it lands


def is_modern_client_message(message: JsonObject) -> bool:
    """A 2026-07-28 client puts its protocol version in every request's `_meta`."""
    params = message.get("params")
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and meta.get(META_PROTOCOL_VERSION) in MODERN_VERSIONS


def choose_translator(first: JsonObject, link: RemoteLink) -> Translator:
    if link.era is Era.MODERN and not is_modern_client_message(first):
        from mcp_bridge.bridge.era import LegacyClientModernRemote

        assert link.discover_result is not None
        return LegacyClientModernRemote(link.discover_result)
    return Passthrough()
