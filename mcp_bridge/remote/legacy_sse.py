"""HTTP+SSE client transport (2024-11-05 basic/transports §HTTP with SSE; deprecated by
SEP-2596, still served by many remotes).

Theory of operation. A GET opens one long event stream; its first event, `endpoint`, names
the URL to POST every client message to; every server message (responses included) arrives
later as a `message` event on the stream, so responses are matched to requests by id. The
stream IS the session: when it drops, every pending request gets an error response, and
the next send opens a new stream and replays the client's handshake (swallowing the
replayed initialize's answer) before sending.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from mcp_bridge import jsonrpc
from mcp_bridge.errors import RemoteError
from mcp_bridge.jsonrpc import JsonObject, Kind, RequestId
from mcp_bridge.protocol import Era
from mcp_bridge.remote.answers import AwaitedAnswers
from mcp_bridge.remote.base import Deliver
from mcp_bridge.remote.endpoint import ConnectOptions, HttpEndpoint
from mcp_bridge.remote.headers import ACCEPT_BOTH, ACCEPT_SSE, JSON_BODY
from mcp_bridge.remote.legacy_session import LegacySession
from mcp_bridge.remote.response_body import (
    RequestFailed,
    broke_off,
    connection_errors,
    event_messages,
    failure_of_status,
    is_sse,
    read_small,
    sse_events,
    unforeseen,
)
from mcp_bridge.remote.sse import SseEvent, SseParser

if TYPE_CHECKING:
    import aiohttp

log = logging.getLogger(__name__)

ENDPOINT_TIMEOUT_S = 10.0  # a real HTTP+SSE server names its endpoint at once


class LegacySseTransport:
    """A RemoteTransport for an HTTP+SSE server; `url` is the event stream (often `/sse`).

    start() opens the stream and raises RemoteError if the URL is not an HTTP+SSE endpoint
    (no event stream, no `endpoint` event, or an endpoint on another origin).
    """

    era = Era.LEGACY

    def __init__(self, url: str, options: ConnectOptions | None = None) -> None:
        self.url = url
        self.endpoint: str | None = None
        self.session = LegacySession()
        self._http = HttpEndpoint(url, options or ConnectOptions())
        self._deliver: Deliver | None = None
        self._answers = AwaitedAnswers()
        self._reader: asyncio.Task[None] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._replayed: dict[RequestId, asyncio.Future[JsonObject]] = {}
        self._closed = False

    async def start(self, deliver: Deliver) -> None:
        self._deliver = deliver
        self._http.start()
        try:
            await self._open_stream()
        except BaseException:
            await self.aclose()
            raise

    async def send(self, message: JsonObject, *, headers: Mapping[str, str] | None = None) -> None:
        if self._deliver is None or self._closed:
            raise RuntimeError("LegacySseTransport.send() needs start() first, and no aclose()")
        kind = jsonrpc.kind_of(message)
        request_id: RequestId | None = message["id"] if kind is Kind.REQUEST else None
        if request_id is not None:
            self._answers.expect(request_id)
        try:
            if self._reader is None or self._reader.done():
                await self._reconnect()
            self.session.saw_client_message(message)
            await self._post(message, headers)
        except Exception as exc:
            if not isinstance(exc, RequestFailed):
                log.exception("sending to %s failed", self.url)
            failure = exc if isinstance(exc, RequestFailed) else unforeseen(self.url, exc)
            if request_id is None:
                log.warning("could not send %s: %s", message.get("method", "a response"), failure)
                return
            await self._fail(request_id, failure)

    async def cancel(self, request_id: RequestId) -> None:
        """Stop waiting: no error is made up for it if the stream drops, and a late answer
        is dropped. (Cancelling the work is notifications/cancelled, which the bridge
        forwards as a normal message.)"""
        self._answers.forget(request_id)

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        pending = [t for t in (self._reader, self._connecting) if t is not None and not t.done()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await self._http.close()

    # -- the event stream ------------------------------------------------------------------

    async def _open_stream(self) -> None:
        """GET the stream, wait for `endpoint`, then read the rest in a task of its own."""
        auth = self._http.auth_retries()
        headers = self._http.headers(ACCEPT_SSE)
        response = await self._http.open("GET", headers, may_idle=True)
        while await auth.should_retry(response):
            response.release()
            response = await self._http.open("GET", headers, may_idle=True)
        try:
            if response.status >= 400 or not is_sse(response):
                raise RemoteError(
                    f"{self.url} is not an HTTP+SSE endpoint (HTTP {response.status}, "
                    f"Content-Type {response.content_type!r})",
                    next_step="Check the URL, or try --transport streamable-http",
                )
            parser = SseParser(max_event_bytes=self._http.max_message_bytes)
            events = sse_events(self.url, response, parser)
            try:
                async with asyncio.timeout(ENDPOINT_TIMEOUT_S):
                    first = await anext(events, None)
            except TimeoutError:
                first = None
            self.endpoint = self._endpoint_of(first)
        except BaseException:
            response.release()
            raise
        self._reader = asyncio.create_task(self._read(response, events))

    def _endpoint_of(self, event: SseEvent | None) -> str:
        if event is None or event.event != "endpoint":
            raise RemoteError(
                f"{self.url} sent an event stream without an `endpoint` event first",
                next_step="Check the URL, or try --transport streamable-http",
            )
        endpoint = urljoin(self.url, event.data.strip())
        stream, target = urlsplit(self.url), urlsplit(endpoint)
        if (stream.scheme, stream.netloc) != (target.scheme, target.netloc):
            # Posting client messages (and our credentials) to a host the user never named
            # would let a server redirect them anywhere; the SDK client refuses it too.
            raise RemoteError(
                f"{self.url} named a message endpoint on another origin ({endpoint})",
                next_step="Refusing to send messages there; report this to the server's owner",
            )
        return endpoint

    async def _read(
        self, response: aiohttp.ClientResponse, events: AsyncIterator[SseEvent]
    ) -> None:
        why: RequestFailed | None = None
        try:
            async for event in events:
                messages = event_messages(self.url, event)
                del event  # its data is as large as the messages: not kept while they go on
                for message in messages:
                    await self._receive(message)
        except connection_errors() as exc:
            log.info("HTTP+SSE stream from %s broke off: %s", self.url, exc)
        except RequestFailed as exc:  # a message over the limit: which request's, unknown
            log.warning("dropping the HTTP+SSE stream from %s: %s", self.url, exc.what)
            why = exc
        except Exception:
            # Whatever ended the stream, the requests waiting on it are answered below.
            log.exception("reading the HTTP+SSE stream from %s failed", self.url)
        finally:
            response.release()
        await self._stream_lost(why)

    async def _receive(self, message: JsonObject) -> None:
        if "method" not in message:
            request_id = message.get("id")
            replayed = self._replayed.pop(request_id, None) if request_id is not None else None
            if replayed is not None:
                if not replayed.done():
                    replayed.set_result(message)
                return  # the answer to a replayed initialize is ours, not the client's
            answer = self._answers.answer_in(self.url, message)
            if answer is None:
                return
            self.session.saw_initialize_response(answer)
        await self._emit(message)

    async def _stream_lost(self, why: RequestFailed | None = None) -> None:
        """Answer every request still waiting: `why` the stream was dropped, or that it
        closed before their responses."""
        for request_id in self._answers.claim_all():
            failure = why or RequestFailed(
                f"The HTTP+SSE stream from {self.url} closed before the response to request "
                f"{request_id!r}",
                code=jsonrpc.REMOTE_UNAVAILABLE,
                next_step="Retry the request; the next message reconnects",
            )
            await self._emit(failure.response_to(request_id))

    async def _reconnect(self) -> None:
        """Open a new stream and replay the handshake, once however many sends ask."""
        if self._connecting is None or self._connecting.done():
            self._connecting = asyncio.create_task(self._reopen())
        await asyncio.shield(self._connecting)

    async def _reopen(self) -> None:
        try:
            await self._open_stream()
        except RequestFailed:
            raise
        except RemoteError as exc:
            raise RequestFailed(exc.what, code=jsonrpc.REMOTE_UNAVAILABLE) from exc
        initialize, initialized = self.session.initialize, self.session.initialized
        if initialize is None:
            return
        log.info("HTTP+SSE stream to %s reopened; replaying the handshake", self.url)
        answered = asyncio.get_running_loop().create_future()
        self._replayed[initialize["id"]] = answered
        try:
            await self._post(initialize, None)
            async with asyncio.timeout(ENDPOINT_TIMEOUT_S):
                await answered
        except TimeoutError as exc:
            raise RequestFailed(
                f"{self.url} did not answer the replayed initialize",
                code=jsonrpc.REMOTE_UNAVAILABLE,
                next_step="Restart the client to start a new session",
            ) from exc
        finally:
            self._replayed.pop(initialize["id"], None)
        if initialized is not None:
            await self._post(initialized, None)

    # -- posting -----------------------------------------------------------------------------

    async def _post(self, message: JsonObject, extra: Mapping[str, str] | None) -> None:
        """POST one message to the endpoint; the server acknowledges with 2xx and answers on
        the stream. Raises RequestFailed for a refusal or a failed connection."""
        assert self.endpoint is not None
        body = jsonrpc.encode(message)
        auth = self._http.auth_retries()
        while True:
            headers = self._http.headers(ACCEPT_BOTH, extra, JSON_BODY)
            response = await self._http.open("POST", headers, body, url=self.endpoint)
            try:
                if await auth.should_retry(response):
                    continue
                if response.status >= 400:
                    raise await failure_of_status(self.url, response)
                await read_small(response)
                return
            except connection_errors() as exc:
                raise broke_off(self.url, exc) from exc
            finally:
                response.release()

    async def _fail(self, request_id: RequestId, failure: RequestFailed) -> None:
        answer = self._answers.failure(request_id, failure)
        if answer is not None:
            await self._emit(answer)

    async def _emit(self, message: JsonObject) -> None:
        assert self._deliver is not None
        await self._deliver(message)
