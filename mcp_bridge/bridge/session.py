"""One bridge session: one local client (a LineChannel) <-> one remote MCP server.

The session is the message pump and nothing more: it reads local lines, answers what must
be answered locally (malformed input, `ping`), connects to the remote on the first message
that needs it, and routes every message through a translator (era.py when a legacy client
meets a modern remote, Passthrough otherwise). It owns the tasks it starts and closes the
remote when the local side ends.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from mcp_bridge import jsonrpc
from mcp_bridge.bridge.batch import BatchCollector
from mcp_bridge.bridge.channel import IncomingLine, LineChannel, OversizedLine, ParsedLine
from mcp_bridge.bridge.large_line import encode_line
from mcp_bridge.bridge.outgoing import Outgoing, RemoteSend
from mcp_bridge.errors import BridgeError
from mcp_bridge.jsonrpc import JsonObject, Kind
from mcp_bridge.protocol import Era
from mcp_bridge.remote.base import Deliver, RemoteTransport
from mcp_bridge.remote.response_body import RequestFailed

log = logging.getLogger(__name__)

# After a failed connect, wait this long (doubling, capped) before the next attempt, so a
# client retrying in a tight loop does not hammer a server that is down.
CONNECT_BACKOFF_S = (0.5, 8.0)


# The id of the local request the session is sending on now. Tasks started while it is sent
# (a transport's exchange for it) inherit it, so a credential provider asked to recover from
# a 401 can tell which client request waits for it (engine/prompt_sign_in.py).
ROUTED_REQUEST: contextvars.ContextVar[jsonrpc.RequestId | None] = contextvars.ContextVar(
    "ROUTED_REQUEST", default=None
)

# A listen stream the translator gave up on is tried again after this long, doubling each
# time it is given up again (never reset: a remote that keeps hanging up is asked less often).
LISTEN_RETRY_S = (30.0, 600.0)


class Translator(Protocol):
    def from_local(self, message: JsonObject) -> Outgoing: ...

    def from_remote(self, message: JsonObject) -> Outgoing: ...

    @property
    def has_given_up_listening(self) -> bool:
        """True when the remote's notification stream keeps ending and was paused."""
        ...

    def reopen_listen(self) -> Outgoing: ...


class Passthrough:
    """Both sides speak the same era: every message goes through unchanged."""

    has_given_up_listening = False

    def from_local(self, message: JsonObject) -> Outgoing:
        cancelled = _cancelled_request_id(message)
        if cancelled is not None:
            # Forwarded (the legacy way to cancel), and the transport stops waiting, so a
            # late answer never reaches the client (stdio: nothing more for that id).
            return Outgoing(to_remote=(RemoteSend(message),), cancel_remote=(cancelled,))
        return Outgoing(to_remote=(RemoteSend(message),))

    def from_remote(self, message: JsonObject) -> Outgoing:
        return Outgoing(to_local=(message,))

    def reopen_listen(self) -> Outgoing:
        return Outgoing()


@dataclass(frozen=True, slots=True)
class RemoteLink:
    """A started transport, the remote's era, and what the remote said about itself."""

    transport: RemoteTransport
    era: Era
    discover_result: JsonObject | None = None
    first_message_sent: bool = False  # the connector already sent the message it was given


# Opens the remote for the given first local message; raises BridgeError when it cannot.
Connector = Callable[[JsonObject, Deliver], Awaitable[RemoteLink]]
# Chooses the translator once both eras are known.
TranslatorFactory = Callable[[JsonObject, RemoteLink], Translator]


class BridgeSession:
    def __init__(
        self,
        channel: LineChannel,
        connect: Connector,
        make_translator: TranslatorFactory,
        *,
        remote_url: str,
    ) -> None:
        self._channel = channel
        self._connect = connect
        self._make_translator = make_translator
        self._remote_url = remote_url
        self._link: RemoteLink | None = None
        self._translator: Translator | None = None
        self._next_connect_at = 0.0
        self._backoff_s = CONNECT_BACKOFF_S[0]
        self._batches = BatchCollector()
        # Local messages bound for the remote, in arrival order: one pump sends them, so a
        # notification never overtakes the request it follows.
        self._outbox: asyncio.Queue[JsonObject] = asyncio.Queue()
        self._has_asked = False  # a request has been queued, so the remote is being reached
        self._listen_retry: asyncio.Task[None] | None = None
        self._listen_retry_s = LISTEN_RETRY_S[0]

    async def run(self) -> None:
        """Serve until the local side closes stdin. The caller then calls `aclose()`."""
        pump = asyncio.create_task(self._pump_outbox(), name="outbox")
        try:
            while (line := await self._channel.receive()) is not None:
                self._on_line(line)
        finally:
            pump.cancel()
            await asyncio.gather(pump, return_exceptions=True)

    async def aclose(self) -> None:
        """Close the remote (a legacy session gets its DELETE). Safe to call twice."""
        if self._listen_retry is not None:
            self._listen_retry.cancel()
            await asyncio.gather(self._listen_retry, return_exceptions=True)
            self._listen_retry = None
        if self._link is not None:
            link, self._link = self._link, None
            try:
                await link.transport.aclose()
            except BridgeError as exc:
                log.info("closing %s: %s", self._remote_url, exc)

    # -- local side -------------------------------------------------------------------

    def _on_line(self, line: IncomingLine) -> None:
        if isinstance(line, ParsedLine):
            self._on_message(line.message)
            return
        if isinstance(line, OversizedLine):
            self._reply(
                jsonrpc.error_response(
                    None,
                    jsonrpc.INVALID_REQUEST,
                    f"Message of {line.size} bytes is over the bridge's limit and was dropped; "
                    "raise it with --max-message-bytes",
                )
            )
            return
        if not line.strip():
            return  # blank lines between messages are harmless; say nothing
        try:
            decoded = jsonrpc.decode(line)
        except jsonrpc.InvalidMessage as exc:
            self._reply(jsonrpc.error_response(exc.request_id, exc.code, str(exc)))
            return
        if isinstance(decoded, list):
            self._on_batch(decoded)
        else:
            self._on_message(decoded)

    def _on_batch(self, members: list[object]) -> None:
        request_ids: list[jsonrpc.RequestId] = []
        early: list[JsonObject] = []
        accepted: list[JsonObject] = []
        for member in members:
            if not isinstance(member, dict):
                early.append(
                    jsonrpc.error_response(None, jsonrpc.INVALID_REQUEST, "not a JSON object")
                )
                continue
            try:
                if jsonrpc.kind_of(member) is Kind.REQUEST:
                    request_ids.append(member["id"])
            except jsonrpc.InvalidMessage as exc:
                early.append(jsonrpc.error_response(exc.request_id, exc.code, str(exc)))
                continue
            accepted.append(member)
        complete = self._batches.open(request_ids, early)
        if complete:
            self._channel.send(jsonrpc.encode(complete))
        for member in accepted:
            self._on_message(member)

    def _on_message(self, message: JsonObject) -> None:
        try:
            kind = jsonrpc.kind_of(message)
        except jsonrpc.InvalidMessage as exc:
            self._reply(jsonrpc.error_response(exc.request_id, exc.code, str(exc)))
            return
        if kind is Kind.REQUEST and message["method"] == "ping":
            self._reply(jsonrpc.result_response(message["id"], {}))
            return
        cancelled = _cancelled_request_id(message)
        if cancelled is not None and (complete := self._batches.abandon(cancelled)):
            self._channel.send(jsonrpc.encode(complete))
        if self._translator is None:
            if kind is Kind.REQUEST:
                self._has_asked = True
            elif not self._has_asked:
                log.debug("dropping a %s that came before any request", kind.value)
                return
            # else: it follows a request still connecting (an HTTP+SSE server may answer
            # `initialize` on its stream before the POST returns): it goes out after it.
        self._outbox.put_nowait(message)

    async def _pump_outbox(self) -> None:
        while True:
            message = await self._outbox.get()
            routed = ROUTED_REQUEST.set(message["id"] if _is_request(message) else None)
            try:
                if self._translator is None and (
                    not _is_request(message) or not await self._connect_for(message)
                ):
                    continue  # a notification whose request could not connect goes too
                assert self._translator is not None
                await self._route(self._translator.from_local(message))
            except BridgeError as exc:
                self._answer_failure(message, jsonrpc.REMOTE_UNAVAILABLE, str(exc), exc)
            except Exception:
                # The edge of the session: a bug must not cost the client its connection.
                # Logged with its traceback (to the log file) so it gets fixed.
                log.exception("bridge bug while handling a %s", message.get("method", "reply"))
                self._answer_failure(
                    message, jsonrpc.INTERNAL_ERROR, "mcp-bridge failed; see its log file"
                )
            finally:
                ROUTED_REQUEST.reset(routed)

    def _answer_failure(
        self, message: JsonObject, code: int, text: str, exc: BridgeError | None = None
    ) -> None:
        if not _is_request(message):
            return
        if isinstance(exc, RequestFailed):
            self._reply(exc.response_to(message["id"]))  # its code and data, not only text
        else:
            self._reply(jsonrpc.error_response(message["id"], code, text))

    async def _connect_for(self, message: JsonObject) -> bool:
        """Connect with `message` as the first one; False (and the request answered with an
        error) when the remote cannot be reached."""
        wait_s = self._next_connect_at - time.monotonic()
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        try:
            link = await self._connect(message, self._on_remote_message)
        except BridgeError as exc:
            self._next_connect_at = time.monotonic() + self._backoff_s
            self._backoff_s = min(self._backoff_s * 2, CONNECT_BACKOFF_S[1])
            log.warning("cannot connect to %s: %s", self._remote_url, exc)
            self._answer_failure(message, jsonrpc.REMOTE_UNAVAILABLE, str(exc), exc)
            return False
        self._backoff_s = CONNECT_BACKOFF_S[0]
        try:
            translator = self._make_translator(message, link)
        except BridgeError:
            await link.transport.aclose()  # e.g. a remote speaking no version we know
            raise
        self._link, self._translator = link, translator
        log.info("connected to %s (%s era)", self._remote_url, link.era.value)
        return not link.first_message_sent

    # -- remote side ------------------------------------------------------------------

    async def _on_remote_message(self, message: JsonObject) -> None:
        if self._translator is None:
            # Only the connector's own first exchange can arrive before a translator exists.
            self._reply(message)
            return
        try:
            await self._route(self._translator.from_remote(message))
        except Exception:
            log.exception("bridge bug while relaying a message from %s", self._remote_url)

    # -- routing ----------------------------------------------------------------------

    async def _route(self, out: Outgoing) -> None:
        for warning in out.warnings:
            log.warning("%s: %s", self._remote_url, warning)
        for message in out.to_local:
            self._reply(message)
        link = self._link
        if link is None:
            return
        for send in out.to_remote:
            await link.transport.send(send.message, headers=send.headers)
        for request_id in out.cancel_remote:
            await link.transport.cancel(request_id)
        self._watch_listen()

    def _watch_listen(self) -> None:
        """Schedule a later retry when the translator paused the notification stream, so a
        remote that hangs up repeatedly is retried gently rather than never again."""
        translator = self._translator
        if translator is None or not translator.has_given_up_listening:
            return
        if self._listen_retry is not None and not self._listen_retry.done():
            return
        delay_s = self._listen_retry_s
        self._listen_retry_s = min(delay_s * 2, LISTEN_RETRY_S[1])
        self._listen_retry = asyncio.create_task(self._reopen_listen_after(delay_s))

    async def _reopen_listen_after(self, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if self._translator is None:
            return
        try:
            await self._route(self._translator.reopen_listen())
        except Exception:  # nobody awaits this task: log, or the failure would vanish
            log.exception("bridge bug while reopening the notification stream")

    def _reply(self, message: JsonObject) -> None:
        held, complete = self._batches.offer(message)
        if held:
            if complete is not None:
                self._channel.send(jsonrpc.encode(complete))
            return
        try:
            self._channel.send(encode_line(jsonrpc.id_leading(message)))
        except ValueError as exc:  # NaN/Infinity from a remote: not valid JSON on the wire
            log.warning("dropping a message that cannot be encoded as JSON: %s", exc)


def _is_request(message: JsonObject) -> bool:
    return "method" in message and "id" in message


def _cancelled_request_id(message: JsonObject) -> jsonrpc.RequestId | None:
    """The request a `notifications/cancelled` names, if `message` is one."""
    if message.get("method") != "notifications/cancelled" or "id" in message:
        return None
    params = message.get("params")
    request_id = params.get("requestId") if isinstance(params, dict) else None
    return request_id if jsonrpc.is_request_id(request_id) else None
