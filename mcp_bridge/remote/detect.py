"""Connect to a remote MCP server: find its era and transport, and hand back a started
transport. The decisions are era_probe's (pure); this module only sends the probes.

Order for `--transport auto` (2026-07-28 versioning.mdx and streamable-http.mdx §Backward
Compatibility; the spec leaves the order of the fallbacks open): POST `server/discover`
at 2026-07-28 -> POST the client's `initialize` as legacy Streamable HTTP -> GET for an
HTTP+SSE `endpoint`. Network failures are not an era verdict: they raise. Nothing is
cached on disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from mcp_bridge.errors import RemoteError
from mcp_bridge.jsonrpc import UNSUPPORTED_PROTOCOL_VERSION, JsonObject
from mcp_bridge.protocol import LATEST_MODERN_VERSION, Era, TransportKind
from mcp_bridge.remote.base import Deliver, RemoteTransport
from mcp_bridge.remote.endpoint import ConnectOptions
from mcp_bridge.remote.era_probe import (
    ProbeAnswer,
    ProbeVerdict,
    classify_discover,
    classify_initialize,
    discover_request,
    supported_versions,
)
from mcp_bridge.remote.legacy_sse import LegacySseTransport
from mcp_bridge.remote.response_body import RemoteSilent
from mcp_bridge.remote.streamable import StreamableHttpTransport

__all__ = ["DISCOVER_TIMEOUT_S", "ConnectOptions", "RemoteConnection", "connect"]

log = logging.getLogger(__name__)

# The SDK's own client gives discover 10 s; a legacy server that never answers it is legacy.
DISCOVER_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class RemoteConnection:
    """A started transport and what detection learned.

    `discover_result`: the remote's `server/discover` result when it is modern (the bridge
    answers a legacy client's `initialize` from it). `initialize_sent`: the client's
    `initialize` went to the remote during detection and its answer was (or will be) passed
    to `deliver`; the bridge must not send it again.
    """

    transport: RemoteTransport
    era: Era
    kind: TransportKind  # STREAMABLE_HTTP or SSE, never AUTO
    discover_result: JsonObject | None = None
    initialize_sent: bool = False
    tried: tuple[str, ...] = field(default=())


async def connect(
    url: str,
    kind: TransportKind,
    deliver: Deliver,
    *,
    initialize: JsonObject | None = None,
    options: ConnectOptions | None = None,
) -> RemoteConnection:
    """Reach `url` with the transport `kind` names (AUTO: detect it) and return it started.

    `initialize`: the local client's `initialize` request if it opened with one. Against a
    legacy remote it is sent as the probe itself and its answer delivered; against a modern
    one it is not sent (RemoteConnection.initialize_sent says which).

    Raises RemoteError when no transport works (the message lists what was tried) or the
    remote cannot be reached.
    """
    opts = options or ConnectOptions()
    if kind is TransportKind.SSE:
        return await _connect_sse(url, deliver, initialize, opts, tried=())
    tried: list[str] = []
    modern = StreamableHttpTransport(url, Era.MODERN, opts)
    await modern.start(deliver)
    try:
        verdict, answer = await _discover(modern, initialize)
    except BaseException:
        await modern.aclose()
        raise
    tried.append(f"server/discover: {_describe(answer)}")
    if verdict is ProbeVerdict.MODERN:
        if answer is not None and answer.result is not None:
            return RemoteConnection(
                modern, Era.MODERN, TransportKind.STREAMABLE_HTTP, answer.result, tried=tuple(tried)
            )
        await modern.aclose()
        raise _modern_refusal(url, answer)
    await modern.aclose()
    if verdict is ProbeVerdict.ERROR:
        raise _refused(url, answer) or _failed(url, tried)
    if verdict is ProbeVerdict.LEGACY_STREAMABLE or kind is TransportKind.STREAMABLE_HTTP:
        legacy = StreamableHttpTransport(url, Era.LEGACY, opts)
        await legacy.start(deliver)
        if initialize is None:
            # Nothing to probe with: the bridge's first legacy message will be the handshake.
            return RemoteConnection(
                legacy, Era.LEGACY, TransportKind.STREAMABLE_HTTP, tried=tuple(tried)
            )
        try:
            answer = await legacy.probe(initialize)
        except BaseException:
            await legacy.aclose()
            raise
        verdict = classify_initialize(answer)
        tried.append(f"initialize: {_describe(answer)}")
        if verdict is ProbeVerdict.LEGACY_STREAMABLE:
            await _deliver_probe_answer(answer, initialize, deliver)
            return RemoteConnection(
                legacy,
                Era.LEGACY,
                TransportKind.STREAMABLE_HTTP,
                initialize_sent=True,
                tried=tuple(tried),
            )
        await legacy.aclose()
        if verdict is not ProbeVerdict.TRY_SSE or kind is TransportKind.STREAMABLE_HTTP:
            raise _refused(url, answer) or _failed(url, tried)
    return await _connect_sse(url, deliver, initialize, opts, tried=tuple(tried))


async def _discover(
    transport: StreamableHttpTransport, initialize: JsonObject | None
) -> tuple[ProbeVerdict, ProbeAnswer | None]:
    try:
        # A silence limit on the exchange, not a deadline on the whole probe: a 401 that
        # starts a browser login may take minutes, and that says nothing about the era.
        answer = await transport.probe(
            discover_request(initialize), silence_timeout_s=DISCOVER_TIMEOUT_S
        )
    except RemoteSilent:
        # No answer to discover in time means a legacy server: the spec's rule for stdio
        # (2026-07-28 stdio.mdx §Backward Compatibility), which we apply over HTTP too.
        log.info("server/discover at %s timed out; assuming a legacy server", transport.url)
        return ProbeVerdict.LEGACY_STREAMABLE, None
    return classify_discover(answer), answer


async def _connect_sse(
    url: str,
    deliver: Deliver,
    initialize: JsonObject | None,
    opts: ConnectOptions,
    *,
    tried: tuple[str, ...],
) -> RemoteConnection:
    transport = LegacySseTransport(url, opts)
    try:
        await transport.start(deliver)
    except RemoteError as exc:
        raise _failed(url, [*tried, f"GET for an HTTP+SSE endpoint: {exc.what}"]) from exc
    if initialize is not None:
        await transport.send(initialize)
    return RemoteConnection(
        transport,
        Era.LEGACY,
        TransportKind.SSE,
        initialize_sent=initialize is not None,
        tried=(*tried, "GET: HTTP+SSE endpoint"),
    )


async def _deliver_probe_answer(
    answer: ProbeAnswer, initialize: JsonObject, deliver: Deliver
) -> None:
    """What came with the answer to the client's `initialize`, then its one response (the
    first, and under the client's id even when the server could not read it: `id: null`)."""
    for message in answer.messages:
        if "method" in message:
            await deliver(message)
    response = answer.response
    assert response is not None  # classify_initialize said LEGACY_STREAMABLE
    await deliver({**response, "id": initialize["id"]})


def _describe(answer: ProbeAnswer | None) -> str:
    if answer is None:
        return "no answer in time"
    code = answer.error_code
    return f"HTTP {answer.status}" + (f", JSON-RPC error {code}" if code is not None else "")


def _refused(url: str, answer: ProbeAnswer | None) -> RemoteError | None:
    """The error for an answer that is an authorization refusal the provider could not fix."""
    if answer is None or answer.status not in (401, 403):
        return None
    return RemoteError(
        f"{url} requires authorization (HTTP {answer.status}) and none that works was available",
        next_step="Log in to it (`mcp-bridge login`), or check the --header token",
    )


def _failed(url: str, tried: list[str] | tuple[str, ...]) -> RemoteError:
    return RemoteError(
        f"{url} does not answer as an MCP server (tried {'; '.join(tried)})",
        next_step="Check the URL (often it ends in /mcp or /sse) and that you are logged in",
    )


def _modern_refusal(url: str, answer: ProbeAnswer | None) -> RemoteError:
    """A modern server refused the discover probe: no fallback (MCP 2026-07-28, Versioning)."""
    if answer is not None and answer.error_code != UNSUPPORTED_PROTOCOL_VERSION:
        error = (answer.response or {}).get("error", {})
        return RemoteError(
            f"{url} refused the server/discover probe: {error.get('message')} "
            f"(JSON-RPC error {answer.error_code})",
            next_step="Report this to mcp-bridge's developers with the server's name",
        )
    supported = supported_versions(answer) if answer is not None else []
    return RemoteError(
        f"{url} speaks MCP {', '.join(supported) or 'versions it did not name'}, "
        f"and mcp-bridge speaks {LATEST_MODERN_VERSION} and the handshake versions",
        next_step="Update mcp-bridge, or ask the server's owner which version to use",
    )
