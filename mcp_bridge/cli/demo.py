"""`mcp-bridge demo`: a local demo server, `mcp-bridge run` in front of it, and a scripted
stdio client, with the exchange shown as it happens. Needs no network and no setup."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from typing import Any

from mcp_bridge.errors import BridgeError

STEP_TIMEOUT_S = 30.0


class DemoFailed(BridgeError):
    pass


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    demo = commands.add_parser(
        "demo",
        help="start a local demo server and show a client talking to it through the bridge",
    )
    demo.set_defaults(handler=demo_command)


def demo_command(args: argparse.Namespace) -> int:
    return asyncio.run(_demo())


async def _demo() -> int:
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mcp_bridge.demo.server",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    bridge: asyncio.subprocess.Process | None = None
    try:
        url = await _await_ready(server)
        _say(f"demo server listening at {url}")
        _say(f"starting: mcp-bridge run {url}\n")
        bridge = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mcp_bridge",
            "run",
            url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        client = ScriptedClient(bridge)
        init = await client.request(
            "initialize",
            {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "mcp-bridge-demo-client", "version": "1.0"},
            },
        )
        info = init.get("serverInfo", {})
        _say(
            f"   server is {info.get('name')} {info.get('version')}, "
            f"protocol {init.get('protocolVersion')}"
        )
        await client.notify("notifications/initialized")
        tools = await client.request("tools/list", {})
        _say("   tools: " + ", ".join(tool["name"] for tool in tools.get("tools", [])))
        added = await client.request("tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}})
        _say(f"   2 + 3 = {_text_of(added)}")
        launched = await client.request(
            "tools/call",
            {"name": "countdown", "arguments": {"start": 3}, "_meta": {"progressToken": "demo"}},
        )
        _say(f"   countdown says {_text_of(launched)}")
        _say("\nclosing stdin: the bridge ends the remote session and exits")
        assert bridge.stdin is not None
        bridge.stdin.close()
        async with asyncio.timeout(STEP_TIMEOUT_S):
            code = await bridge.wait()
        _say(f"bridge exited with status {code}")
        return 0 if code == 0 else 1
    finally:
        for process in (bridge, server):
            if process is not None and process.returncode is None:
                process.terminate()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await process.wait()


class ScriptedClient:
    """Plays a desktop MCP client on the bridge's stdin and stdout."""

    def __init__(self, bridge: asyncio.subprocess.Process) -> None:
        assert bridge.stdin is not None
        assert bridge.stdout is not None
        self._stdin = bridge.stdin
        self._stdout = bridge.stdout
        self._next_id = 1

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        request_id = self._next_id
        self._next_id += 1
        await self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        while True:
            message = await self._receive()
            if message.get("id") == request_id and "method" not in message:
                if "error" in message:
                    raise DemoFailed(f"{method} failed: {message['error'].get('message')}")
                result: dict[str, Any] = message["result"]
                return result

    async def notify(self, method: str) -> None:
        await self._send({"jsonrpc": "2.0", "method": method})

    async def _send(self, message: dict[str, Any]) -> None:
        _say(f"-> {_short(message)}")
        self._stdin.write(json.dumps(message).encode() + b"\n")
        await self._stdin.drain()

    async def _receive(self) -> dict[str, Any]:
        async with asyncio.timeout(STEP_TIMEOUT_S):
            line = await self._stdout.readline()
        if not line:
            raise DemoFailed("the bridge closed its stdout; see its log for why")
        message: dict[str, Any] = json.loads(line)
        _say(f"<- {_short(message)}")
        return message


async def _await_ready(server: asyncio.subprocess.Process) -> str:
    assert server.stdout is not None
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while line := await server.stdout.readline():
            if line.startswith(b"READY "):
                return line.split()[1].decode()
    raise DemoFailed("the demo server did not start")


def _text_of(result: dict[str, Any]) -> str:
    return " ".join(item.get("text", "") for item in result.get("content", []))


def _short(message: dict[str, Any], limit: int = 160) -> str:
    text = json.dumps(message, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _say(line: str) -> None:
    print(line, flush=True)
