"""From a remote's settings to a started remote link and the translator to use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from mcp_bridge.bridge.session import Passthrough, RemoteLink, Translator
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.protocol import Era, TransportKind
from mcp_bridge.remote.base import CredentialProvider, Deliver
from mcp_bridge.remote.detect import ConnectOptions, connect
from mcp_bridge.remote.endpoint import DEFAULT_MAX_MESSAGE_BYTES

if TYPE_CHECKING:
    import aiohttp


@dataclass(frozen=True, slots=True)
class RemoteSettings:
    url: str
    transport: TransportKind = TransportKind.AUTO
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    credentials: CredentialProvider | None = None
    http: aiohttp.ClientSession | None = None  # shared, closed by its owner
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES  # the largest message either way


async def open_remote(settings: RemoteSettings, first: JsonObject, deliver: Deliver) -> RemoteLink:
    """Detect and start the transport; the local client's `initialize`, when it opened with
    one, doubles as the legacy probe. Raises RemoteError when nothing answers."""
    opening = first if first.get("method") == "initialize" else None
    connection = await connect(
        settings.url,
        settings.transport,
        deliver,
        initialize=opening,
        options=ConnectOptions(
            credentials=settings.credentials,
            static_headers=settings.headers,
            http=settings.http,
            max_message_bytes=settings.max_message_bytes,
        ),
    )
    return RemoteLink(
        transport=connection.transport,
        era=connection.era,
        discover_result=connection.discover_result,
        first_message_sent=connection.initialize_sent,
    )


def choose_translator(first: JsonObject, link: RemoteLink) -> Translator:
    """A modern remote needs translation for any local client (a modern one passes through
    it nearly untouched); a legacy remote gets the client's messages as they are."""
    if link.era is Era.MODERN:
        from mcp_bridge.bridge.era import ModernRemoteTranslator

        assert link.discover_result is not None  # detection returns MODERN only with one
        return ModernRemoteTranslator(link.discover_result)
    return Passthrough()
