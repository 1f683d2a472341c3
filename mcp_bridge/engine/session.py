"""open_session: the one place a bridge is composed. A local client's channel, a server
profile and the process's registry in; a running BridgeSession out.

`run --no-daemon` calls it with the process's stdio, the daemon with each shim's socket,
and the engine itself for a recheck of a server's cached answers; nothing else builds a
BridgeSession.

    client channel -> FrontChannel (CachedFront: cached answers, held handshake;
                                    SignInRounds: a sign-in as an MRTR round)
                   -> BridgeSession -> remote transport (registry's credentials, HTTP,
                                       through PromptSignIn for the sign-ins a client
                                       shows: rounds, -32042)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping

from mcp_bridge import jsonrpc
from mcp_bridge.auth.on_demand import OnDemandCredentials
from mcp_bridge.bridge.channel import LineChannel, OutgoingLine, OversizedLine
from mcp_bridge.bridge.connector import RemoteSettings, choose_translator, open_remote
from mcp_bridge.bridge.large_line import LargeLine
from mcp_bridge.bridge.session import BridgeSession
from mcp_bridge.engine.cached_front import CachedFront
from mcp_bridge.engine.front_channel import FrontChannel
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.engine.prompt_sign_in import PromptSignIn
from mcp_bridge.engine.registry import CredentialRegistry
from mcp_bridge.jsonrpc import JsonObject
from mcp_bridge.remote.base import CredentialProvider
from mcp_bridge.server_log import serving

__all__ = ["RECHECK_TIMEOUT_S", "SHUTDOWN_BUDGET_S", "open_session"]

log = logging.getLogger(__name__)

# Closing the remote session (a legacy session's DELETE) gets this long at most: a host
# escalates to SIGKILL soon after it closes stdin or sends SIGTERM.
SHUTDOWN_BUDGET_S = 0.8
RECHECK_TIMEOUT_S = 60.0
RECHECK_ID_PREFIX = "mcp-bridge-recheck-"


@contextlib.asynccontextmanager
async def open_session(
    channel: LineChannel,
    profile: ServerProfile,
    registry: CredentialRegistry,
    *,
    is_recheck: bool = False,
) -> AsyncIterator[BridgeSession]:
    """A session bridging `channel` to `profile`'s server; `await session.run()` serves it
    until the local client leaves. On exit the remote is closed (within the budget) and
    the channel flushed and released; the registry's shared state stays.

    `is_recheck`: the engine's own session that asks the remote what was answered from the
    cache: nothing is answered from the cache, and no login is started."""
    # Every line logged for this session (and its tasks) also lands in the server's log.
    with serving(profile.url):
        book = registry.answers_for(profile)
        front = CachedFront(book.get, is_transparent=is_recheck)
        local = FrontChannel(
            channel,
            front,
            book,
            on_cache_answer=lambda opening: _recheck_soon(profile, registry, opening),
        )
        shared = registry.credentials_for(profile)
        credentials: CredentialProvider | None = shared
        if shared is not None and is_recheck:
            credentials = _WithoutLogin(shared)
        elif shared is not None:
            credentials = PromptSignIn(
                shared,
                local,
                lambda: registry.oauth_for(profile),
                server=profile.url,
            )
        settings = RemoteSettings(
            url=profile.url,
            transport=profile.transport,
            headers=profile.headers,
            credentials=credentials,
            http=registry.http_for(profile),
            max_message_bytes=profile.max_message_bytes,
        )
        session = BridgeSession(
            local,
            lambda first, deliver: open_remote(settings, first, deliver),
            choose_translator,
            remote_url=profile.url,
        )
        login_watchers = registry.state_for(profile).login_watchers

        def login_lost(what: str) -> None:
            local.login_lost(profile.url, what)

        login_watchers.add(login_lost)
        try:
            yield session
        finally:
            login_watchers.discard(login_lost)
            try:
                async with asyncio.timeout(SHUTDOWN_BUDGET_S):
                    await session.aclose()
            except TimeoutError:
                log.info("closing the session with %s took too long; left it", profile.url)
            finally:
                await local.aclose()


# -- rechecking cached answers ----------------------------------------------------------


def _recheck_soon(
    profile: ServerProfile, registry: CredentialRegistry, opening: JsonObject
) -> None:
    """A client was answered from the cache: ask the remote the same (at most once a
    minute per server), so the cache follows it and watching clients hear of new tools."""
    if registry.answers_for(profile).is_recheck_due():
        registry.start_job(profile, _recheck(profile, registry, opening))


async def _recheck(
    profile: ServerProfile, registry: CredentialRegistry, opening: JsonObject
) -> None:
    channel = ScriptedChannel(_recheck_questions(opening))
    try:
        async with asyncio.timeout(RECHECK_TIMEOUT_S):
            async with open_session(channel, profile, registry, is_recheck=True) as session:
                await session.run()
    except TimeoutError:
        log.info("rechecking the answers of %s timed out", profile.url)


def _recheck_questions(opening: JsonObject) -> list[JsonObject]:
    """What a client that opened with `opening` asks first, under ids of our own."""
    params = opening.get("params")
    params = dict(params) if isinstance(params, dict) else {}
    first: JsonObject = {
        "jsonrpc": "2.0",
        "id": f"{RECHECK_ID_PREFIX}1",
        "method": opening["method"],
        "params": params,
    }
    if opening["method"] == "server/discover":
        meta = params.get("_meta")
        tools_params: JsonObject = {"_meta": meta} if isinstance(meta, dict) else {}
        follow: list[JsonObject] = []
    else:
        tools_params = {}
        follow = [{"jsonrpc": "2.0", "method": "notifications/initialized"}]
    tools: JsonObject = {
        "jsonrpc": "2.0",
        "id": f"{RECHECK_ID_PREFIX}2",
        "method": "tools/list",
        "params": tools_params,
    }
    return [first, *follow, tools]


class ScriptedChannel:
    """A LineChannel that plays a client asking `questions`, and leaves once every
    request among them is answered."""

    def __init__(self, questions: list[JsonObject]) -> None:
        self._lines = [jsonrpc.encode(question) for question in questions]
        self._waiting = {question["id"] for question in questions if "id" in question}
        self._answered = asyncio.Event()

    async def receive(self) -> bytes | OversizedLine | None:
        if self._lines:
            return self._lines.pop(0)
        await self._answered.wait()
        return None

    def send(self, line: OutgoingLine) -> None:
        try:
            message = jsonrpc.decode(line.text() if isinstance(line, LargeLine) else line)
        except jsonrpc.InvalidMessage:
            return
        if isinstance(message, dict) and "method" not in message:
            self._waiting.discard(message.get("id"))
            if not self._waiting:
                self._answered.set()

    async def aclose(self) -> None:
        return None


class _WithoutLogin:
    """A CredentialProvider that sends the shared provider's token but never starts a
    login or a step-up: a recheck is no reason to open a browser."""

    def __init__(self, inner: OnDemandCredentials) -> None:
        self._inner = inner

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        return await self._inner.stored_headers(method, url)

    def on_dpop_nonce(self, url: str, nonce: str) -> None:
        self._inner.on_dpop_nonce(url, nonce)

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        return False

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        return False

    async def on_retry_refused(self, www_authenticate: str | None) -> None:
        return None
