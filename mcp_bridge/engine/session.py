"""open_session: the one place a bridge is composed. A local client's channel, a server
profile and the process's registry in; a running BridgeSession out.

`run --no-daemon` calls it with the process's stdio, the daemon with each shim's socket;
nothing else builds a BridgeSession.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from mcp_bridge.bridge.channel import LineChannel
from mcp_bridge.bridge.connector import RemoteSettings, choose_translator, open_remote
from mcp_bridge.bridge.session import BridgeSession
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.engine.registry import CredentialRegistry

__all__ = ["SHUTDOWN_BUDGET_S", "open_session"]

log = logging.getLogger(__name__)

# Closing the remote session (a legacy session's DELETE) gets this long at most: a host
# escalates to SIGKILL soon after it closes stdin or sends SIGTERM.
SHUTDOWN_BUDGET_S = 0.8


@contextlib.asynccontextmanager
async def open_session(
    channel: LineChannel, profile: ServerProfile, registry: CredentialRegistry
) -> AsyncIterator[BridgeSession]:
    """A session bridging `channel` to `profile`'s server; `await session.run()` serves it
    until the local client leaves. On exit the remote is closed (within the budget) and
    the channel flushed and released; the registry's shared state stays."""
    settings = RemoteSettings(
        url=profile.url,
        transport=profile.transport,
        headers=profile.headers,
        credentials=registry.credentials_for(profile),
        http=registry.http_for(profile),
    )
    session = BridgeSession(
        channel,
        lambda first, deliver: open_remote(settings, first, deliver),
        choose_translator,
        remote_url=profile.url,
    )
    try:
        yield session
    finally:
        try:
            async with asyncio.timeout(SHUTDOWN_BUDGET_S):
                await session.aclose()
        except TimeoutError:
            log.info("closing the session with %s took too long; left it", profile.url)
        finally:
            await channel.aclose()
