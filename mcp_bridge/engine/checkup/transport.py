"""`doctor`'s transport step: which MCP era and transport the server speaks, found the way
`run` finds it (remote/detect.py: `server/discover` at 2026-07-28, then a legacy
`initialize`, then an HTTP+SSE GET), with `doctor`'s own `initialize` as the legacy probe.

The requests carry the profile's `--header`s and, when the vault holds an access token for
this server that has not expired, that token (with a DPoP proof of the stored key for a
bound one); nothing is ever refreshed and no sign-in is started: a 401 is noted and the
probe ends there.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import TYPE_CHECKING

from mcp_bridge import __version__, jsonrpc
from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.errors import sanitize_remote_text
from mcp_bridge.engine.checkup.findings import Finding
from mcp_bridge.engine.checkup.local_steps import StoredLogin
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.errors import RemoteError
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.protocol import LATEST_HANDSHAKE_VERSION, META_SERVER_INFO, Era, TransportKind
from mcp_bridge.remote.detect import ConnectOptions, RemoteConnection, connect

if TYPE_CHECKING:
    import aiohttp

__all__ = ["StoredTokenOnly", "transport_finding"]

PROBE_ID = "mcp-bridge-doctor"
TRANSPORT_TIMEOUT_S = 45.0  # discover may take its 10 s of silence, then the legacy probe
ANSWER_TIMEOUT_S = 15.0  # an HTTP+SSE answer comes over the stream after the POST


class StoredTokenOnly:
    """A CredentialProvider (remote/base.py) that offers the stored access token, if the
    login can present it (`StoredLogin.can_present`), and recovers from nothing: it records
    the refusal instead. The one retry it asks for is a DPoP resource's `use_dpop_nonce`
    (RFC 9449 §9), whose nonce came with the refusal: that is no refusal of the token."""

    def __init__(self, login: StoredLogin | None) -> None:
        self._login = login
        self._nonce_retried = False
        self.refused_with: int | None = None  # 401 or 403, when the server refused

    @property
    def sends_token(self) -> bool:
        return self._login is not None

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        return {} if self._login is None else self._login.headers(method, url)

    def on_dpop_nonce(self, url: str, nonce: str) -> None:
        if self._login is not None and self._login.dpop is not None:
            self._login.dpop.nonces.remember(url, nonce)

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        challenge = BearerChallenge.from_header(www_authenticate)
        bound = self._login is not None and self._login.dpop is not None
        if bound and challenge is not None and challenge.wants_nonce and not self._nonce_retried:
            self._nonce_retried = True
            return True
        self.refused_with = 401
        return False

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        self.refused_with = 403
        return False

    async def on_retry_refused(self, www_authenticate: str | None) -> None:
        return None  # never asked: doctor does not retry


def _initialize() -> JsonObject:
    return jsonrpc.request(
        PROBE_ID,
        "initialize",
        {
            "protocolVersion": LATEST_HANDSHAKE_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-bridge doctor", "version": __version__},
        },
    )


async def transport_finding(
    profile: ServerProfile, http: aiohttp.ClientSession, credentials: StoredTokenOnly
) -> Finding:
    """Detect the era and transport, close what was opened, and say what was found."""
    answers: asyncio.Queue[JsonObject] = asyncio.Queue()

    async def deliver(message: JsonObject) -> None:
        if message.get("id") == PROBE_ID:
            answers.put_nowait(message)

    options = ConnectOptions(
        credentials=credentials,
        static_headers=profile.headers,
        http=http,
        max_message_bytes=profile.max_message_bytes,
    )
    try:
        async with asyncio.timeout(TRANSPORT_TIMEOUT_S):
            connection = await connect(
                profile.url, profile.transport, deliver, initialize=_initialize(), options=options
            )
            try:
                answer = None
                if connection.initialize_sent:
                    async with asyncio.timeout(ANSWER_TIMEOUT_S):
                        answer = await answers.get()
            finally:
                await connection.transport.aclose()
    except TimeoutError:
        return Finding.failed(
            "transport",
            f"{profile.url} did not finish answering the era probes within "
            f"{TRANSPORT_TIMEOUT_S:.0f} s",
            "Retry; if it keeps failing, the server may be overloaded, or try --transport sse "
            "or --transport streamable-http",
        )
    except RemoteError as exc:
        if credentials.refused_with is not None:
            return _refused(profile, credentials)
        return Finding.from_error("transport", exc)
    return _described(connection, answer)


def _refused(profile: ServerProfile, credentials: StoredTokenOnly) -> Finding:
    status = credentials.refused_with
    if credentials.sends_token:
        return Finding.failed(
            "transport",
            f"the server refused the stored access token (HTTP {status})",
            f"Sign in again: `mcp-bridge login {profile.url}`",
        )
    if profile.oauth is None:
        return Finding.failed(
            "transport",
            f"the server refused the request with the configured Authorization header "
            f"(HTTP {status})",
            "Check the token in --header (an expired or mistyped one?)",
        )
    return Finding.not_applicable(
        "transport",
        f"the server answers only signed-in requests (HTTP {status}), so its era shows "
        f"after a sign-in (`mcp-bridge login {profile.url}`, then `doctor` again)",
    )


def _described(connection: RemoteConnection, answer: JsonObject | None) -> Finding:
    if connection.era is Era.MODERN:
        discovered = connection.discover_result or {}
        versions = discovered.get("supportedVersions")
        spoken = (
            ", ".join(v for v in versions if isinstance(v, str))
            if isinstance(versions, list)
            else "?"
        )
        server = _server_of(_modern_server_info(discovered))
        return Finding.passed(
            "transport",
            f"MCP 2026-07-28 over Streamable HTTP, no sessions{server}; it speaks {spoken}",
        )
    kind = (
        "HTTP+SSE (2024-11-05)"
        if connection.kind is TransportKind.SSE
        else "Streamable HTTP with sessions"
    )
    # What the probes before the one that worked got, e.g. "server/discover: HTTP 400".
    tried = f" (tried {'; '.join(connection.tried[:-1])})" if len(connection.tried) > 1 else ""
    if answer is None:
        return Finding.passed("transport", f"{kind}{tried}")
    error = answer.get("error")
    if isinstance(error, dict):
        message = sanitize_remote_text(error.get("message"))
        return Finding.failed(
            "transport",
            f"{kind}: the server refused `initialize` ({message}, code {error.get('code')})",
            "Tell the server's owner, with this message",
        )
    raw = answer.get("result")
    result: JsonObject = raw if isinstance(raw, dict) else {}
    version = result.get("protocolVersion")
    return Finding.passed(
        "transport", f"{kind}, MCP {version}{_server_of(result.get('serverInfo'))}{tried}"
    )


def _modern_server_info(discovered: JsonObject) -> object:
    """A 2026-07-28 server names itself in the discover result's `_meta`."""
    meta = discovered.get("_meta")
    return meta.get(META_SERVER_INFO) if isinstance(meta, dict) else None


def _server_of(info: object) -> str:
    if not isinstance(info, dict) or not isinstance(info.get("name"), str):
        return ""
    name = sanitize_remote_text(info["name"], max_chars=60)
    version = info.get("version")
    shown_version = (
        f" {sanitize_remote_text(version, max_chars=20)}" if isinstance(version, str) else ""
    )
    return f"; server {name}{shown_version}"
