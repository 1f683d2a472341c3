"""ServerProfile: everything the engine needs to know about one remote server, as one
frozen value, and its JSON form (what a shim hands the daemon in its hello).

The JSON form is built by the stdlib-only front (`cli/run.py`) and checked here, once:
a malformed profile is a ConfigError naming the field, never a traceback. It carries the
expanded `--header` values and a client secret, so it only ever travels over the
owner-only daemon socket; `repr()` shows neither.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Self

from mcp_bridge.auth.settings import OAuthSettings
from mcp_bridge.auth.urlpolicy import UrlPolicy, canonical_resource
from mcp_bridge.errors import AuthError, ConfigError
from mcp_bridge.protocol import TransportKind

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "ServerProfile"]

DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class ServerProfile:
    """One remote MCP server and how to reach it. `oauth` is None when the user manages
    credentials (a static `Authorization` header): the bridge then never does OAuth."""

    url: str
    transport: TransportKind = TransportKind.AUTO
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    oauth: OAuthSettings | None = field(default_factory=OAuthSettings)
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    allow_http: bool = False  # plain http off loopback, for the server and its AS

    @property
    def resource(self) -> str:
        """The canonical resource URI (RFC 8707): the key of everything kept per server."""
        return canonical_resource(self.url)

    @classmethod
    def from_json(cls, doc: object) -> Self:
        """The profile a shim sent; ConfigError for anything malformed."""
        if not isinstance(doc, dict):
            raise ConfigError("The server profile is not a JSON object")
        url = doc.get("url")
        if not isinstance(url, str) or not url:
            raise ConfigError("The server profile has no URL")
        oauth_flags = doc.get("oauth")
        oauth = None
        if oauth_flags is not None:
            if not isinstance(oauth_flags, dict):
                raise ConfigError("The server profile's OAuth settings are not an object")
            oauth = OAuthSettings.from_flags(oauth_flags)
        # https, or http to a loopback host (--allow-http for others): the tokens and --header
        # values sent to it must not cross a network in clear text (MCP Security Best
        # Practices).
        allow_http = doc.get("allow_http") is True
        try:
            UrlPolicy.for_server(url, allow_http=allow_http)
        except AuthError as exc:  # a URL the user gave: theirs to fix
            raise ConfigError(exc.what, next_step=exc.next_step) from exc
        try:
            transport = TransportKind(doc.get("transport", TransportKind.AUTO.value))
        except ValueError:
            raise ConfigError(f"Unknown transport {doc.get('transport')!r}") from None
        headers = doc.get("headers", {})
        if not isinstance(headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise ConfigError("The server profile's headers are not text names and values")
        limit = doc.get("max_message_bytes", DEFAULT_MAX_MESSAGE_BYTES)
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1024:
            raise ConfigError(
                f"--max-message-bytes {limit!r} is too small", next_step="Use 1024 or more"
            )
        return cls(
            url=url,
            transport=transport,
            headers=MappingProxyType(dict(headers)),
            oauth=oauth,
            max_message_bytes=limit,
            allow_http=allow_http,
        )
