"""Streamable HTTP client transport, both eras, on aiohttp.

Theory of operation. Every request is its own POST, run as its own task, so sixteen calls
are sixteen concurrent exchanges and no lock is held across any of them. The answer is a
JSON body or an SSE stream; everything on it (progress, server-to-client requests, the
response) goes to `deliver` in order. Whatever goes wrong on the way becomes a JSON-RPC
error response for that request; `send` itself never raises because the remote failed.

Era.LEGACY (2025-03-26 .. 2025-11-25): the transport watches the client's handshake
(LegacySession), stamps `Mcp-Session-Id` and `MCP-Protocol-Version` on later requests,
opens the GET stream after `notifications/initialized`, resumes broken streams with
`Last-Event-ID`, and replays the handshake when the server has lost the session.

Era.MODERN (2026-07-28): no session, no GET; routing headers on every POST, and
cancel(id) closes that request's response stream, which is how 2026-07-28 cancels.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING

from mcp_bridge import jsonrpc
from mcp_bridge.jsonrpc import JsonObject, Kind, RequestId
from mcp_bridge.protocol import HEADER_SESSION_ID, SUBSCRIPTIONS_LISTEN, Era
from mcp_bridge.remote.answers import AwaitedAnswers
from mcp_bridge.remote.base import Deliver
from mcp_bridge.remote.endpoint import ConnectOptions, HttpEndpoint
from mcp_bridge.remote.era_probe import ProbeAnswer
from mcp_bridge.remote.get_stream import GetStream
from mcp_bridge.remote.headers import (
    ACCEPT_BOTH,
    ACCEPT_SSE,
    JSON_BODY,
    modern_request_headers,
)
from mcp_bridge.remote.legacy_session import INITIALIZE, INITIALIZED, LegacySession
from mcp_bridge.remote.response_body import (
    RequestFailed,
    broke_off,
    connection_errors,
    error_message_of,
    event_messages,
    failure_of_status,
    is_json,
    is_sse,
    no_response,
    read_answer,
    read_messages,
    read_small,
    sse_events,
    unforeseen,
)
from mcp_bridge.remote.sse import SseParser

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

# Give up resuming one request's stream after this many reconnects that brought nothing.
MAX_RESUME_ATTEMPTS = 5
DELETE_TIMEOUT_S = 5.0


class StreamableHttpTransport:
    """A RemoteTransport for one Streamable HTTP endpoint, in the era detection chose,
    reached as `options` say (by default: no credentials, its own session)."""

    def __init__(self, url: str, era: Era, options: ConnectOptions | None = None) -> None:
        self.url = url
        self.era = era
        self.session = LegacySession()
        self._http = HttpEndpoint(url, options or ConnectOptions())
        self._deliver: Deliver | None = None
        self._inflight: dict[RequestId, asyncio.Task[None]] = {}
        self._answers = AwaitedAnswers()
        self._listener = GetStream(
            self._http, self.session, lambda response, parser: self._read_stream(response, parser)
        )
        self._recovery: asyncio.Task[None] | None = None
        self._closed = False

    # -- RemoteTransport ----------------------------------------------------------------

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._http.start()

    async def send(self, message: JsonObject, *, headers: Mapping[str, str] | None = None) -> None:
        if self._deliver is None or self._closed:
            raise RuntimeError(
                "StreamableHttpTransport.send() needs start() first, and no aclose()"
            )
        kind = jsonrpc.kind_of(message)
        if self.era is Era.LEGACY:
            self.session.saw_client_message(message)
        if kind is Kind.REQUEST:
            request_id: RequestId = message["id"]
            self._answers.expect(request_id)
            task = asyncio.create_task(self._run_request(message, headers))
            self._inflight[request_id] = task
            task.add_done_callback(lambda done: self._forget(request_id, done))
            return
        await self._send_one_way(message, headers)
        if self.era is Era.LEGACY and message.get("method") == INITIALIZED:
            self._listener.restart()

    async def cancel(self, request_id: RequestId) -> None:
        """Stop waiting for `request_id` and close its response stream (the 2026-07-28 way to
        cancel; in the legacy era the bridge also forwards notifications/cancelled)."""
        task = self._inflight.pop(request_id, None)
        self._answers.forget(request_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        tasks = [*self._inflight.values(), self._recovery]
        pending = [task for task in tasks if task is not None and not task.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._listener.aclose()
        self._inflight.clear()
        try:
            if self.era is Era.LEGACY and self.session.session_id is not None:
                await self._delete_session()
        finally:
            await self._http.close()

    async def probe(
        self, message: JsonObject, *, silence_timeout_s: float | None = None
    ) -> ProbeAnswer:
        """Send one request and return its answer instead of delivering it: era detection's
        view of the exchange (status included). An `initialize` probe in the legacy era
        opens the session, as if the client had sent it. Needs start(); raises RequestFailed
        when the remote cannot be reached, RemoteSilent when it sends nothing for
        `silence_timeout_s` (time spent logging in, between attempts, does not count)."""
        if self._deliver is None:
            raise RuntimeError("StreamableHttpTransport.probe() needs start() first")
        if self.era is Era.LEGACY:
            self.session.saw_client_message(message)
        async with self._post(message, None, silence_timeout_s=silence_timeout_s) as response:
            is_handshake = message.get("method") == INITIALIZE and self.era is Era.LEGACY
            if is_handshake and response.status < 400:
                self.session.session_id = response.headers.get(HEADER_SESSION_ID)
            limit = self._http.max_message_bytes
            messages = await read_answer(self.url, response, message["id"], limit)
            answer = ProbeAnswer(message["id"], response.status, tuple(messages))
        if self.era is Era.LEGACY:
            for reply in messages:
                self.session.saw_initialize_response(reply)
        return answer

    # -- one exchange ---------------------------------------------------------------------

    def _forget(self, request_id: RequestId, task: asyncio.Task[None]) -> None:
        if self._inflight.get(request_id) is task:
            del self._inflight[request_id]
            self._answers.forget(request_id)
        if not task.cancelled() and task.exception() is not None:
            log.error("request task for %r failed", request_id, exc_info=task.exception())

    async def _run_request(self, message: JsonObject, extra: Mapping[str, str] | None) -> None:
        request_id: RequestId = message["id"]
        # A listen's answer is a stream that may carry nothing for hours: no silence limit.
        may_idle = message.get("method") == SUBSCRIPTIONS_LISTEN
        try:
            async with self._post(message, extra, may_idle=may_idle) as response:
                await self._consume_reply(message, response)
        except RequestFailed as failure:
            await self._fail(request_id, failure)
        except Exception as exc:
            # A fault nothing above foresaw: still the request's one answer, and a traceback
            # in the log so that it gets fixed.
            log.exception("request %r to %s failed", request_id, self.url)
            await self._fail(request_id, unforeseen(self.url, exc))

    async def _fail(self, request_id: RequestId, failure: RequestFailed) -> None:
        answer = self._answers.failure(request_id, failure)
        if answer is not None:
            await self._emit(answer)

    async def _send_one_way(self, message: JsonObject, extra: Mapping[str, str] | None) -> None:
        """POST a notification or a response; the server answers 202 (nothing to deliver)."""
        try:
            async with self._post(message, extra) as response:
                if response.status >= 400:
                    failure = await failure_of_status(self.url, response)
                    log.warning("%s was refused: %s", message.get("method", "a response"), failure)
        except RequestFailed as failure:
            # No id to answer on: the message is lost, as it would be on a dropped line.
            log.warning("could not send %s: %s", message.get("method", "a response"), failure)

    @contextlib.asynccontextmanager
    async def _post(
        self,
        message: JsonObject,
        extra: Mapping[str, str] | None,
        *,
        silence_timeout_s: float | None = None,
        may_idle: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST `message` and yield the answer, after the retries the spec allows: once after
        the credential provider recovered from a 401 or 403, once after a lost session was
        re-established. Raises RequestFailed when the remote cannot be reached."""
        body = jsonrpc.encode(message)
        auth = self._http.auth_retries()
        recovered = False
        while True:
            session_headers = self._era_headers(message)
            sent_session = session_headers.get(HEADER_SESSION_ID)
            headers = self._http.headers(ACCEPT_BOTH, session_headers, extra, JSON_BODY)
            response = await self._http.open(
                "POST", headers, body, silence_timeout_s=silence_timeout_s, may_idle=may_idle
            )
            try:
                if await auth.should_retry(response):
                    continue
                if sent_session and not recovered and await self._session_lost(response):
                    recovered = True
                    await self._recover_session(sent_session)
                    continue
                yield response
                return
            except connection_errors() as exc:  # the body broke off while being read
                raise broke_off(self.url, exc) from exc
            finally:
                # Back to the pool when fully read; a half-read stream (cancel) is closed.
                response.release()

    def _era_headers(self, message: JsonObject | None) -> dict[str, str]:
        if self.era is Era.MODERN:
            return modern_request_headers(message) if message is not None else {}
        return self.session.headers(message)

    async def _consume_reply(self, request: JsonObject, response: aiohttp.ClientResponse) -> None:
        """Deliver what the answer to `request` carries; RequestFailed if its response is
        not among it."""
        request_id = request["id"]
        if response.status >= 400:
            raise await failure_of_status(self.url, response)
        if request.get("method") == INITIALIZE and self.era is Era.LEGACY:
            self.session.session_id = response.headers.get(HEADER_SESSION_ID)
        if response.status == 202 or not (is_json(response) or is_sse(response)):
            raise RequestFailed(
                f"The MCP server at {self.url} answered a request with HTTP {response.status} "
                f"and Content-Type {response.content_type!r}, not JSON or an event stream",
                code=jsonrpc.INTERNAL_ERROR,
                next_step="Report this to the server's owner",
            )
        if is_json(response):
            limit = self._http.max_message_bytes
            for message in await read_messages(self.url, response, limit):
                await self._receive(message, request_id)
            if self._answers.is_awaited(request_id):
                raise no_response(self.url, request_id, "its JSON body")
            return
        parser = SseParser(max_event_bytes=self._http.max_message_bytes)
        if await self._read_stream(response, parser, request_id):
            return
        if self.era is Era.LEGACY and parser.last_event_id is not None:
            await self._resume(request_id, parser)
            return
        raise no_response(self.url, request_id, "its event stream")

    async def _read_stream(
        self,
        response: aiohttp.ClientResponse,
        parser: SseParser,
        request_id: RequestId | None = None,
    ) -> bool:
        """Deliver the messages of one SSE body; True once `request_id` is answered (or no
        longer awaited). A stream that breaks off just ends: the caller decides whether to
        resume."""
        try:
            async for event in sse_events(self.url, response, parser):
                messages = event_messages(self.url, event)
                del event  # its data is as large as the messages: not kept while they go on
                for message in messages:
                    await self._receive(message, request_id)
        except connection_errors() as exc:
            log.info("event stream from %s broke off: %s", self.url, exc)
        return request_id is not None and not self._answers.is_awaited(request_id)

    async def _resume(self, request_id: RequestId, parser: SseParser) -> None:
        """Reconnect a stream that ended before its response: GET with Last-Event-ID
        (2025-11-25 transports §Resumability; also how priming events are followed up)."""
        for _attempt in range(MAX_RESUME_ATTEMPTS):
            await asyncio.sleep(parser.reconnect_delay_s())
            last_id = parser.last_event_id
            assert last_id is not None  # only called with an id to resume from
            resume = {"Last-Event-ID": last_id}
            headers = self._http.headers(ACCEPT_SSE, self._era_headers(None), resume)
            try:
                response = await self._http.open("GET", headers)
            except RequestFailed:
                continue
            try:
                if response.status >= 400 or not is_sse(response):
                    break
                if await self._read_stream(response, parser, request_id):
                    return
            finally:
                response.release()
        raise no_response(self.url, request_id, "its event stream, even after resuming it")

    async def _receive(self, message: JsonObject, exchange: RequestId | None) -> None:
        """Deliver one message from the remote (on `exchange`'s own stream, if not None); a
        response only if it is the first to a request awaiting one."""
        if "method" not in message:
            answer = self._answers.answer_in(self.url, message, exchange)
            if answer is None:
                return
            message = answer
            if self.era is Era.LEGACY:
                self.session.saw_initialize_response(message)
        await self._emit(message)

    async def _emit(self, message: JsonObject) -> None:
        assert self._deliver is not None
        await self._deliver(message)

    # -- legacy session upkeep -----------------------------------------------------------

    async def _session_lost(self, response: aiohttp.ClientResponse) -> bool:
        if response.status == 404:
            return True  # 2025-11-25 §Session Management: the session is gone, start anew
        if response.status == 400:
            # TypeScript SDK servers routed by hand (server-everything's streamableHttp.js)
            # answer an unknown session id with 400 "No valid session ID provided".
            return "session" in error_message_of(await read_small(response)).lower()
        return False

    async def _recover_session(self, lost_session_id: str) -> None:
        """Re-establish the session once, however many requests noticed it was lost."""
        if self._recovery is None or self._recovery.done():
            if self.session.session_id != lost_session_id:
                return  # another request already replaced it
            self._recovery = asyncio.create_task(self._replay_handshake())
        # Shielded: one waiter being cancelled must not abort the replay the others await.
        await asyncio.shield(self._recovery)

    async def _replay_handshake(self) -> None:
        initialize, initialized = self.session.initialize, self.session.initialized
        if initialize is None:
            raise RequestFailed(
                f"The MCP server at {self.url} lost the session and no initialize was recorded",
                code=jsonrpc.REMOTE_UNAVAILABLE,
                next_step="Restart the client to start a new session",
            )
        log.info("session at %s was lost; replaying the handshake", self.url)
        async with self._post(initialize, None) as response:
            if response.status >= 400:
                raise await failure_of_status(self.url, response)
            self.session.session_id = response.headers.get(HEADER_SESSION_ID)
            limit = self._http.max_message_bytes
            messages = await read_answer(self.url, response, initialize["id"], limit)
        for message in messages:
            # The client has had its initialize answered once; this answer is ours alone.
            if not self.session.saw_initialize_response(message):
                await self._receive(message, None)
        if initialized is not None:
            await self._send_one_way(initialized, None)
            self._listener.restart()

    async def _delete_session(self) -> None:
        """End the session (2025-11-25 §Session Management: SHOULD; 405 means not allowed)."""
        headers = self._http.headers(ACCEPT_BOTH, self._era_headers(None))
        try:
            async with asyncio.timeout(DELETE_TIMEOUT_S):
                response = await self._http.open("DELETE", headers)
                response.release()
                log.debug("DELETE session at %s: HTTP %d", self.url, response.status)
        except (RequestFailed, TimeoutError) as exc:
            log.info("could not end the session at %s: %s", self.url, exc)
        self.session.session_id = None
