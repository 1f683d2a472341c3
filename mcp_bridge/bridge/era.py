"""Era translation: a stdio client of either era <-> a 2026-07-28 remote.

Pure: no sockets, clocks or logging. Knows JSON-RPC envelopes, not transports or tokens.

Theory of operation. The caller feeds every local message to `from_local` and every remote
message to `from_remote`, and performs the returned `Outgoing` in order. A local request
whose `_meta` already names a protocol version comes from a 2026-07-28 client and goes up
as it is; anything else is legacy and is translated:

    local (legacy)                      bridge                     remote (2026-07-28)
    initialize, ping, server/discover   answered here from the discover result
    logging/setLevel                    remembered -> _meta.logLevel on later requests
    resources/(un)subscribe             answered here -> one subscriptions/listen, union filter
    notifications/initialized           opens that listen (list_changed interest)
    any other request                   _meta merged, Mcp-Param-* headers ->
    notifications/cancelled             -> cancel_remote (HTTP cancel is closing the stream)
    <- result / error                   id mapped back; tools/list filtered (x-mcp-header)
    <- elicitation/create ...           <- input_required (MRTR), answers -> retry, new id

Every request the bridge sends upstream is in `_in_flight` under the id it went out with,
so a response is routed by one lookup; ids the bridge mints start with `mcp-bridge:`.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from mcp_bridge import __version__, jsonrpc
from mcp_bridge.bridge import handshake, listen, mrtr
from mcp_bridge.bridge.flights import Flights, Forwarded, Listen, ToolsRefresh, is_minted
from mcp_bridge.bridge.outgoing import NO_HEADERS, Effects, Outgoing, RemoteSend
from mcp_bridge.bridge.x_mcp_header import ToolHeaders, UnsafeInteger
from mcp_bridge.jsonrpc import JsonObject, Kind, RequestId
from mcp_bridge.protocol import META_PROTOCOL_VERSION, SUBSCRIPTIONS_LISTEN

__all__ = ["ModernRemoteTranslator", "Outgoing", "RemoteSend"]

BRIDGE_INFO: JsonObject = {"name": "mcp-bridge", "version": __version__}
# tools/list pages read to find a tool's schema after a HeaderMismatch.
MAX_TOOL_PAGES = 20


class ModernRemoteTranslator:
    """Serves one stdio client (legacy or 2026-07-28) from one 2026-07-28 remote.

    `discover_result` is the remote's `server/discover` result; `bridge_info` names the
    bridge where the remote or the client named nothing. Raises RemoteError when the remote
    speaks no modern version the bridge knows.
    """

    def __init__(self, discover_result: JsonObject, *, bridge_info: JsonObject | None = None):
        self._discover = discover_result
        self._bridge_info = bridge_info or BRIDGE_INFO
        self._version = handshake.modern_version_of(discover_result)
        self._client: handshake.LocalClient | None = None  # set by `initialize`
        self._log_level: str | None = None
        self._flights = Flights()  # everything under way upstream
        self._parked = mrtr.ParkedRequests()  # requests waiting on the client's input
        self._tool_headers = ToolHeaders()
        self._listen = listen.ListenState()
        self._is_listen_due = False  # legacy client initialized: it expects notifications

    # -- local -> remote ------------------------------------------------------------------

    def from_local(self, message: JsonObject) -> Outgoing:
        out = Effects()
        try:
            kind = jsonrpc.kind_of(message)
        except jsonrpc.InvalidMessage as exc:
            out.to_local.append(jsonrpc.error_response(exc.request_id, exc.code, str(exc)))
            return out.done()
        if kind is Kind.REQUEST:
            self._on_local_request(message, out)
        elif kind is Kind.NOTIFICATION:
            self._on_local_notification(message, out)
        else:
            self._on_local_response(message, out)
        return out.done()

    def _on_local_request(self, message: JsonObject, out: Effects) -> None:
        request_id, method = message["id"], message["method"]
        params = message.get("params")
        if _declares_version(params):  # a 2026-07-28 client: relay, add only HTTP duties
            if method == "server/discover":
                self._reply(out, request_id, handshake.discover_result_for_local(self._discover))
            else:
                self._forward(out, request_id, method, params or {}, is_translated=False)
            return
        match method:
            case "initialize":
                self._client = handshake.LocalClient.from_initialize(params)
                self._listen.list_changed = listen.advertised_list_changed(
                    self._discover.get("capabilities")
                )
                result = handshake.initialize_result(
                    self._discover, self._client.protocol_version, bridge_info=self._bridge_info
                )
                self._reply(out, request_id, result)
            case "ping":
                self._reply(out, request_id, {})
            case "server/discover":
                self._reply(out, request_id, handshake.discover_result_for_local(self._discover))
            case "logging/setLevel":
                level = params.get("level") if isinstance(params, dict) else None
                self._log_level = level if isinstance(level, str) else None
                self._reply(out, request_id, {})
            case "resources/subscribe" | "resources/unsubscribe":
                self._on_subscribe(out, request_id, method, params)
            case _:
                self._forward(out, request_id, method, self._with_meta(params), is_translated=True)
                self._is_listen_due = self._is_listen_due or self._client is not None
                self._sync_listen(out)

    def _on_local_notification(self, message: JsonObject, out: Effects) -> None:
        params = message.get("params")
        match message["method"]:
            case "notifications/cancelled" if isinstance(params, dict):
                self._cancel(out, params.get("requestId"))
            case "notifications/initialized":
                self._is_listen_due = True
                self._sync_listen(out)
            case _:
                # 2026-07-28 defines no client notification over HTTP (Streamable HTTP):
                # roots/list_changed was removed, progress from a client has no request to
                # belong to upstream.
                pass

    def _on_local_response(self, message: JsonObject, out: Effects) -> None:
        answered = self._parked.answer(message)
        if answered is None:
            return  # an answer to nothing we asked (or to a request since cancelled)
        pending = answered.pending
        out.to_local.extend(answered.cancel_local)
        if answered.error is not None:
            code = answered.error.get("code")
            self._fail(
                out,
                pending.local_id,
                code if isinstance(code, int) else jsonrpc.INTERNAL_ERROR,
                mrtr.failed_input_message(pending.method, answered.error),
            )
        elif answered.is_complete:
            self._retry_round(out, pending)

    def _on_subscribe(
        self, out: Effects, request_id: RequestId, method: str, params: object
    ) -> None:
        capabilities = self._discover.get("capabilities")
        refusal = listen.change_subscription(self._listen, method, params, capabilities)
        if refusal is not None:
            self._fail(out, request_id, *refusal)
            return
        self._reply(out, request_id, {})
        self._is_listen_due = True
        self._sync_listen(out)

    def _cancel(self, out: Effects, local_id: object) -> None:
        if not isinstance(local_id, str | int):
            return
        if local_id in self._parked:
            reason = "the client cancelled the request"
            out.to_local.extend(self._parked.drop(local_id, reason=reason))
        remote_id = self._flights.cancel(local_id)
        if remote_id is not None:
            out.cancel_remote.append(remote_id)

    # -- remote -> local ------------------------------------------------------------------

    def from_remote(self, message: JsonObject) -> Outgoing:
        out = Effects()
        try:
            kind = jsonrpc.kind_of(message)
        except jsonrpc.InvalidMessage as exc:
            out.warnings.append(f"the remote sent an invalid message: {exc}")
            return out.done()
        if kind is Kind.RESPONSE:
            self._on_remote_response(message, out)
        elif kind is Kind.NOTIFICATION:
            self._on_remote_notification(message, out)
        else:  # a 2026-07-28 server never sends requests, and cannot be answered
            out.warnings.append(f"the remote sent a {message['method']!r} request; ignored")
        return out.done()

    def reopen_listen(self) -> Outgoing:
        """Try the listen stream again after it was given up (MAX_REOPENS idle ends, or the
        remote lacked the method). The session calls this after its own backoff."""
        out = Effects()
        self._listen.reset()
        self._sync_listen(out)
        return out.done()

    @property
    def has_given_up_listening(self) -> bool:
        return self._is_listen_due and self._listen.has_given_up

    def _on_remote_response(self, message: JsonObject, out: Effects) -> None:
        flight = self._flights.finish(message["id"])
        if isinstance(flight, Forwarded):
            self._on_forwarded_response(flight, message, out)
        elif isinstance(flight, ToolsRefresh):
            self._on_tools_refresh(flight, message, out)
        elif isinstance(flight, Listen):
            self._listen.ended(is_unsupported=listen.is_method_not_found(message))
            self._sync_listen(out)  # re-opens it, unless it was given up
            if (warning := self._listen.why_stopped()) is not None:
                out.warnings.append(warning)
        # else: the answer to a request since cancelled (Cancellation: the client SHOULD ignore it)

    def _on_forwarded_response(self, flight: Forwarded, message: JsonObject, out: Effects) -> None:
        error = message.get("error")
        if isinstance(error, dict):
            if flight.may_reissue(error):
                flight.is_reissue = True
                self._send(out, flight, flight.sent_params, fresh_id=True)
                return
            is_mismatch = error.get("code") == jsonrpc.HEADER_MISMATCH
            if is_mismatch and flight.method == "tools/call" and not flight.header_retry_used:
                # Streamable HTTP, x-mcp-header: on HeaderMismatch the client SHOULD re-read
                # tools/list and retry.
                self._send_tools_list(out, ToolsRefresh(flight, error), cursor=None)
                return
            out.to_local.append({**message, "id": flight.local_id})
            return
        result = message.get("result")
        if not isinstance(result, dict):
            self._fail(
                out, flight.local_id, jsonrpc.INTERNAL_ERROR, "The remote's result is not an object"
            )
            return
        if flight.method == "tools/list":
            result = self._learn_tools(result, out, is_first_page="cursor" not in flight.params)
        result_type = result.get("resultType", "complete")  # MCP 2026-07-28: absent means complete
        if result_type == "complete" or not flight.is_translated:
            self._reply(out, flight.local_id, result)
        elif result_type == "input_required" and flight.method in mrtr.MRTR_METHODS:
            self._on_input_required(flight, result, out)
        else:  # 2026-07-28: an unrecognised resultType MUST be treated as invalid
            self._fail(
                out,
                flight.local_id,
                jsonrpc.INTERNAL_ERROR,
                f"The remote server answered {flight.method} with resultType {result_type!r}, "
                "which is not valid there; tell the server's owner",
            )

    def _on_input_required(self, flight: Forwarded, result: JsonObject, out: Effects) -> None:
        capabilities = self._client.capabilities if self._client is not None else {}
        required = mrtr.check_round(flight.method, flight.rounds, result, capabilities)
        if isinstance(required, mrtr.RoundRefused):
            self._fail(out, flight.local_id, required.code, required.message)
            return
        pending = mrtr.PendingRound(
            flight.local_id, flight.method, flight.params, flight.rounds + 1, required.request_state
        )
        if required.input_requests:
            mint = partial(self._flights.mint, "input")
            out.to_local.extend(self._parked.park(pending, required.input_requests, mint))
        else:  # MRTR: only requestState (load shedding, say): the client MAY retry at once
            self._retry_round(out, pending)

    def _retry_round(self, out: Effects, pending: mrtr.PendingRound) -> None:
        flight = Forwarded(pending.local_id, pending.method, pending.params, True, pending.rounds)
        params = mrtr.retry_params(pending.params, pending.responses, pending.request_state)
        self._send(out, flight, params, fresh_id=True)

    def _on_tools_refresh(self, refresh: ToolsRefresh, message: JsonObject, out: Effects) -> None:
        call = refresh.call
        result = message.get("result")
        if not isinstance(result, dict):
            self._fail_mismatch(out, refresh)
            return
        self._learn_tools(result, out, is_first_page=refresh.pages == 1)
        cursor = result.get("nextCursor")
        if (
            not self._tool_headers.knows(call.params.get("name"))
            and isinstance(cursor, str)
            and refresh.pages < MAX_TOOL_PAGES
        ):
            refresh.pages += 1
            self._send_tools_list(out, refresh, cursor=cursor)
            return
        call.header_retry_used = True
        self._send(out, call, call.sent_params, fresh_id=True)

    def _on_remote_notification(self, message: JsonObject, out: Effects) -> None:
        subscription_id = listen.subscription_id_of(message)
        if not is_minted(subscription_id):
            out.to_local.append(message)  # progress, logs, a modern client's own listen
            return
        if subscription_id != self._listen.open_id:
            return  # from a listen the bridge has closed since
        received = listen.receive(self._listen, message)
        if received.to_local is not None:
            out.to_local.append(received.to_local)
        if received.warning is not None:
            out.warnings.append(received.warning)

    # -- building blocks ------------------------------------------------------------------

    def _with_meta(self, params: object) -> JsonObject:
        client_info = self._client.client_info if self._client else None
        return handshake.with_request_meta(
            params,
            version=self._version,
            capabilities=self._client.capabilities if self._client else {},
            client_info=client_info or self._bridge_info,
            log_level=self._log_level,
        )

    def _forward(
        self,
        out: Effects,
        local_id: RequestId,
        method: str,
        params: JsonObject,
        *,
        is_translated: bool,
    ) -> None:
        self._send(out, Forwarded(local_id, method, params, is_translated), params)

    def _send(
        self, out: Effects, flight: Forwarded, params: JsonObject, *, fresh_id: bool = False
    ) -> None:
        """Send `flight` upstream with `params`: under the client's own id on the first try
        (unless it could clash with one of ours), under a new one on every retry (MRTR)."""
        local_id = flight.local_id
        headers: Mapping[str, str] = NO_HEADERS
        if flight.method == "tools/call":
            try:
                headers = self._tool_headers.for_call(params)
            except UnsafeInteger as exc:
                self._fail(out, local_id, jsonrpc.INVALID_PARAMS, f"Cannot send this call: {exc}")
                return
        flight.sent_params = params
        remote_id = self._flights.start(flight, fresh_id=fresh_id)
        out.to_remote.append(RemoteSend(jsonrpc.request(remote_id, flight.method, params), headers))

    def _send_tools_list(self, out: Effects, refresh: ToolsRefresh, *, cursor: str | None) -> None:
        params = self._with_meta({"cursor": cursor} if cursor is not None else {})
        remote_id = self._flights.start(refresh)
        out.to_remote.append(RemoteSend(jsonrpc.request(remote_id, "tools/list", params)))

    def _learn_tools(self, result: JsonObject, out: Effects, *, is_first_page: bool) -> JsonObject:
        filtered = self._tool_headers.learn(result, is_first_page=is_first_page)
        out.warnings.extend(f"dropped {reason}" for reason in filtered.dropped)
        return filtered.result

    def _sync_listen(self, out: Effects) -> None:
        if not self._is_listen_due:
            return
        plan = self._listen.plan()
        if plan.close is not None:
            self._flights.discard(plan.close)
            self._listen.closed()
            out.cancel_remote.append(plan.close)
        if plan.open is not None:
            params = self._with_meta({"notifications": plan.open.to_json()})
            listen_id = self._flights.start(Listen(plan.open))
            self._listen.opened(listen_id, plan.open)
            out.to_remote.append(
                RemoteSend(jsonrpc.request(listen_id, SUBSCRIPTIONS_LISTEN, params))
            )

    def _fail_mismatch(self, out: Effects, refresh: ToolsRefresh) -> None:
        message = refresh.mismatch.get("message", "")
        self._fail(
            out,
            refresh.call.local_id,
            jsonrpc.HEADER_MISMATCH,
            f"The remote server rejected the call's Mcp-Param headers ({message}), and the "
            "bridge could not re-read its tool list to fix them; retry, or tell the server's owner",
        )

    def _fail(self, out: Effects, local_id: RequestId, code: int, message: str) -> None:
        out.to_local.append(jsonrpc.error_response(local_id, code, message))

    def _reply(self, out: Effects, local_id: RequestId, result: JsonObject) -> None:
        out.to_local.append(jsonrpc.result_response(local_id, result))


def _declares_version(params: object) -> bool:
    meta = params.get("_meta") if isinstance(params, dict) else None
    return isinstance(meta, dict) and isinstance(meta.get(META_PROTOCOL_VERSION), str)
