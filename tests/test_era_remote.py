"""The era translator against a REAL 2026-07-28 remote: the Python SDK's MCPServer (dual-era;
requests with MCP-Protocol-Version 2026-07-28 take its modern path) served by uvicorn on
127.0.0.1 in this test's loop. The test plays both the legacy stdio client and a minimal
transport (an aiohttp POST per message, JSON or SSE answers), so it depends on neither
the session nor the real transport module.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from mcp_bridge.bridge.era import ModernRemoteTranslator, Outgoing, RemoteSend
from mcp_bridge.jsonrpc import JsonObject, RequestId
from mcp_bridge.remote.headers import ACCEPT_BOTH, modern_request_headers
from mcp_bridge.remote.sse import SseParser
from tests.fixtures.mcp_servers import initialize_request, modern_meta

WAIT_S = 30.0  # generous: a loaded 2-core machine
MODERN_META = modern_meta()
INITIALIZE = initialize_request(0, {"elicitation": {}}, version="2025-06-18")


@dataclass
class MiniTransport:
    """One POST per message; every message of every answer goes to `received`."""

    http: aiohttp.ClientSession
    url: str
    received: asyncio.Queue[JsonObject] = field(default_factory=asyncio.Queue)
    streams: dict[RequestId, asyncio.Task[None]] = field(default_factory=dict)
    sent: list[RemoteSend] = field(default_factory=list)

    def send(self, send: RemoteSend) -> None:
        self.sent.append(send)
        request_id = send.message["id"]
        self.streams[request_id] = asyncio.create_task(self._post(send))

    def cancel(self, request_id: RequestId) -> None:
        task = self.streams.pop(request_id, None)
        if task is not None:
            task.cancel()  # closing the stream is the 2026-07-28 cancel

    async def _post(self, send: RemoteSend) -> None:
        headers = {
            "Accept": ACCEPT_BOTH,
            **modern_request_headers(send.message),
            **send.headers,
        }
        async with self.http.post(self.url, json=send.message, headers=headers) as response:
            if response.content_type == "application/json":
                await self.received.put(await response.json())
                return
            parser = SseParser()
            async for chunk in response.content.iter_any():
                for event in parser.feed(chunk):
                    if event.data:
                        await self.received.put(json.loads(event.data))

    async def aclose(self) -> None:
        for task in self.streams.values():
            task.cancel()
        await asyncio.gather(*self.streams.values(), return_exceptions=True)


@dataclass
class Harness:
    """The legacy client's inbox, and the pump between translator and transport."""

    translator: ModernRemoteTranslator
    transport: MiniTransport
    inbox: list[JsonObject] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def perform(self, out: Outgoing) -> None:
        self.inbox.extend(out.to_local)
        self.warnings.extend(out.warnings)
        for send in out.to_remote:
            self.transport.send(send)
        for request_id in out.cancel_remote:
            self.transport.cancel(request_id)

    def from_client(self, message: JsonObject) -> None:
        self.perform(self.translator.from_local(message))

    async def until_client_gets(self, predicate: Any) -> JsonObject:
        """Pump remote messages through the translator until the client gets a match."""
        async with asyncio.timeout(WAIT_S):
            while True:
                for message in self.inbox:
                    if predicate(message):
                        self.inbox.remove(message)
                        return message
                remote_message = await self.transport.received.get()
                self.perform(self.translator.from_remote(remote_message))


async def discover(http: aiohttp.ClientSession, url: str) -> JsonObject:
    message = {
        "jsonrpc": "2.0",
        "id": "probe",
        "method": "server/discover",
        "params": {"_meta": MODERN_META},
    }
    headers = {"Accept": ACCEPT_BOTH, **modern_request_headers(message)}
    async with http.post(url, json=message, headers=headers) as response:
        assert response.status == 200
        result: JsonObject = (await response.json())["result"]
        return result


@contextlib.asynccontextmanager
async def legacy_client_through_bridge(url: str) -> AsyncIterator[Harness]:
    async with aiohttp.ClientSession() as http:
        transport = MiniTransport(http, url)
        try:
            yield Harness(ModernRemoteTranslator(await discover(http, url)), transport)
        finally:
            await transport.aclose()


def answer_to(request_id: RequestId) -> Any:
    return lambda message: message.get("id") == request_id and "method" not in message


def is_request(method: str) -> Any:
    return lambda message: message.get("method") == method and "id" in message


async def test_legacy_client_runs_a_tool_that_elicits_through_mrtr(remote_url: str) -> None:
    async with legacy_client_through_bridge(remote_url) as bridge:
        bridge.from_client(INITIALIZE)
        init = await bridge.until_client_gets(answer_to(0))
        assert init["result"]["serverInfo"]["name"] == "era-remote"
        assert init["result"]["protocolVersion"] == "2025-06-18"
        bridge.from_client({"jsonrpc": "2.0", "method": "notifications/initialized"})

        bridge.from_client({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        tools = await bridge.until_client_gets(answer_to(1))
        assert {tool["name"] for tool in tools["result"]["tools"]} == {"deploy", "touch"}

        call = {"name": "deploy", "arguments": {"region": "eu-west"}}
        bridge.from_client({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": call})
        asked = await bridge.until_client_gets(is_request("elicitation/create"))
        assert asked["params"]["message"] == "Deploy to eu-west?"
        bridge.from_client(
            {
                "jsonrpc": "2.0",
                "id": asked["id"],
                "result": {"action": "accept", "content": {"ok": True}},
            }
        )
        final = await bridge.until_client_gets(answer_to(2))
        assert final["result"]["isError"] is False, final
        assert final["result"]["content"][0]["text"] == "deployed to eu-west: True"
        calls = [s for s in bridge.transport.sent if s.message["method"] == "tools/call"]
        assert [dict(s.headers) for s in calls] == [{"Mcp-Param-Region": "eu-west"}] * 2
        assert calls[0].message["id"] != calls[1].message["id"]


async def test_a_call_before_tools_list_recovers_from_header_mismatch(remote_url: str) -> None:
    async with legacy_client_through_bridge(remote_url) as bridge:
        bridge.from_client(INITIALIZE)
        await bridge.until_client_gets(answer_to(0))
        call = {"name": "deploy", "arguments": {"region": "ap-south"}}
        bridge.from_client({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": call})
        # The first POST has no Mcp-Param-Region (the bridge has not seen the schema): the
        # server answers -32020, the bridge re-reads tools/list and retries with the header.
        asked = await bridge.until_client_gets(is_request("elicitation/create"))
        sent = [s for s in bridge.transport.sent if s.message["method"] != "subscriptions/listen"]
        assert [s.message["method"] for s in sent] == ["tools/call", "tools/list", "tools/call"]
        assert [dict(s.headers) for s in sent] == [{}, {}, {"Mcp-Param-Region": "ap-south"}]
        bridge.from_client(
            {
                "jsonrpc": "2.0",
                "id": asked["id"],
                "result": {"action": "accept", "content": {"ok": False}},
            }
        )
        final = await bridge.until_client_gets(answer_to(5))
        assert final["result"]["content"][0]["text"] == "deployed to ap-south: False"


async def test_list_changed_and_resource_updates_arrive_in_legacy_form(remote_url: str) -> None:
    async with legacy_client_through_bridge(remote_url) as bridge:
        bridge.from_client(INITIALIZE)
        await bridge.until_client_gets(answer_to(0))
        bridge.from_client({"jsonrpc": "2.0", "method": "notifications/initialized"})
        uri = "memo://notes"
        bridge.from_client(
            {"jsonrpc": "2.0", "id": 1, "method": "resources/subscribe", "params": {"uri": uri}}
        )
        assert (await bridge.until_client_gets(answer_to(1)))["result"] == {}
        listens = [
            s for s in bridge.transport.sent if s.message["method"] == "subscriptions/listen"
        ]
        assert listens[-1].message["params"]["notifications"]["resourceSubscriptions"] == [uri]
        # Wait for the server's acknowledgement, so the stream is live before the change.
        async with asyncio.timeout(WAIT_S):
            while True:
                remote_message = await bridge.transport.received.get()
                bridge.perform(bridge.translator.from_remote(remote_message))
                acknowledged = remote_message.get("params", {}).get("notifications", {})
                if acknowledged.get("resourceSubscriptions") == [uri]:
                    break

        touch = {"name": "touch", "arguments": {"uri": uri}}
        bridge.from_client({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": touch})
        updated = await bridge.until_client_gets(
            lambda m: m.get("method") == "notifications/resources/updated"
        )
        assert updated == {
            "jsonrpc": "2.0",
            "method": "notifications/resources/updated",
            "params": {"uri": uri},
        }
        changed = await bridge.until_client_gets(
            lambda m: m.get("method") == "notifications/tools/list_changed"
        )
        assert "params" not in changed or "_meta" not in changed["params"]
        await bridge.until_client_gets(answer_to(2))
        assert bridge.warnings == []
