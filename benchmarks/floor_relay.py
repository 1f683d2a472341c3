"""The leanest stdio-to-HTTP relay there can be: the floor daemon_bench.py measures the
bridge against. Not a bridge: it knows one server (the bench server) and one client (the
bench's pipe client), answers `initialize` itself, and POSTs every other request as the
2026-07-28 request the bridge would send, with the same aiohttp, json and asyncio.

    python benchmarks/floor_relay.py URL     (stdin/stdout: JSON-RPC lines)

What the bridge costs above this is its own logic (era translation, sessions, caches,
auth hooks, the shim's hop); what this costs above a direct client is the price of any
relay on stdio at all.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import aiohttp

from mcp_bridge.protocol import (
    LATEST_MODERN_VERSION,
    META_CLIENT_CAPABILITIES,
    META_CLIENT_INFO,
    META_PROTOCOL_VERSION,
)
from mcp_bridge.remote.headers import ACCEPT_BOTH, JSON_BODY, modern_request_headers

_META = {
    META_PROTOCOL_VERSION: LATEST_MODERN_VERSION,
    META_CLIENT_CAPABILITIES: {},
    META_CLIENT_INFO: {"name": "floor-relay", "version": "1"},
}


async def relay(url: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, sys.stdout
    )
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    tasks: set[asyncio.Task[None]] = set()

    async with aiohttp.ClientSession() as session:

        async def answer(message: dict[str, Any]) -> None:
            if message.get("method") == "initialize":
                result = {
                    "protocolVersion": message["params"]["protocolVersion"],
                    "capabilities": {"tools": {}},
                    "serverInfo": {"name": "floor-relay", "version": "1"},
                }
                reply: object = {"jsonrpc": "2.0", "id": message["id"], "result": result}
            else:
                message["params"] = {**message.get("params", {}), "_meta": _META}
                headers = {"Accept": ACCEPT_BOTH, **JSON_BODY, **modern_request_headers(message)}
                async with session.post(url, data=json.dumps(message), headers=headers) as r:
                    reply = await r.json()
            writer.write(json.dumps(reply).encode() + b"\n")

        while line := await reader.readline():
            message = json.loads(line)
            if "id" in message:  # notifications need no answer here
                task = asyncio.create_task(answer(message))
                tasks.add(task)
                task.add_done_callback(tasks.discard)


if __name__ == "__main__":
    asyncio.run(relay(sys.argv[1]))
