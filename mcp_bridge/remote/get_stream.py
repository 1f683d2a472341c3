"""The legacy GET stream (2025-03-26 .. 2025-11-25 transports §Listening for Messages from
the Server): what the server sends outside any request, reconnected after the server's
`retry`, and with Last-Event-ID, until the session ends. 405: the server offers none.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from mcp_bridge.remote.endpoint import AuthRetries, HttpEndpoint
from mcp_bridge.remote.headers import ACCEPT_SSE
from mcp_bridge.remote.legacy_session import LegacySession
from mcp_bridge.remote.response_body import RequestFailed, is_sse
from mcp_bridge.remote.sse import SseParser

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

# Reads one stream's events into the transport (which delivers them) until it ends.
ReadStream = Callable[["aiohttp.ClientResponse", SseParser], Awaitable[object]]


class GetStream:
    """The one GET stream of a legacy session; `restart()` after each (re)initialization."""

    def __init__(self, http: HttpEndpoint, session: LegacySession, read: ReadStream) -> None:
        self._http = http
        self._session = session
        self._read = read
        self._task: asyncio.Task[None] | None = None

    def restart(self) -> None:
        session_id = self._session.session_id
        if session_id is None:
            return  # no session, no GET stream (2025-11-25 §Listening for Messages)
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._task = asyncio.create_task(self._listen(session_id))

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _listen(self, session_id: str) -> None:
        parser = SseParser(max_event_bytes=self._http.max_message_bytes)
        auth = self._http.auth_retries()
        while self._session.session_id == session_id:
            delay_s = await self._listen_once(parser, auth)
            if delay_s is None:
                return
            await asyncio.sleep(delay_s)

    async def _listen_once(self, parser: SseParser, auth: AuthRetries) -> float | None:
        """One GET and its stream; the wait before the next, or None for no next one."""
        resume = {"Last-Event-ID": parser.last_event_id} if parser.last_event_id else {}
        try:
            headers = self._http.headers(ACCEPT_SSE, self._session.headers(None), resume)
            response = await self._http.open("GET", headers, may_idle=True)
        except RequestFailed as exc:
            log.debug("GET stream: %s", exc)
            return 0.0  # the endpoint's backoff spaces the attempts out
        try:
            if response.status == 405:
                log.debug("%s offers no GET stream", self._http.url)
                return None
            if await auth.should_retry(response):
                return 0.0
            if response.status >= 400 or not is_sse(response):
                log.info("GET stream at %s refused: HTTP %d", self._http.url, response.status)
                return None  # a lost session is noticed, and replayed, by the next POST
            await self._read(response, parser)
        except RequestFailed as exc:  # a login that cannot happen here, a ruined stream
            log.info("GET stream at %s: %s", self._http.url, exc)
        finally:
            response.release()
        return parser.reconnect_delay_s()
