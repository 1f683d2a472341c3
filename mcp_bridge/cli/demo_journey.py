"""The demo's journey (see cli/demo.py): a local AS and MCP server, the bridge in front,
and a scripted client on its stdio."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shlex
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

from mcp_bridge.errors import BridgeError

STEP_TIMEOUT_S = 30.0
LOGIN_TIMEOUT_S = 300.0
# Bridge log lines worth showing: the OAuth journey, not every connection.
_SHOWN_LOG = (
    "GET http",
    "POST http",
    "answered 401",
    "to sign in",
    "logged in",
    "connected to",
    "step-up",
)


class DemoFailed(BridgeError):
    pass


def run_demo(*, headless: bool) -> int:
    with tempfile.TemporaryDirectory(prefix="mcp-bridge-demo-") as home:
        return asyncio.run(_demo(Path(home), headless=headless))


async def _demo(home: Path, *, headless: bool) -> int:
    # SSE answers (not JSON), so the countdown's progress notifications stream through.
    modes = json.dumps({"consent": "auto" if headless else "page", "json_response": False})
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "mcp_bridge.demo.auth_server", "--modes", modes,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    daemon: asyncio.subprocess.Process | None = None
    bridge: asyncio.subprocess.Process | None = None
    env = _bridge_env(home, headless=headless)
    try:
        issuer, mcp_url = await _await_ready(server)
        _say(f"authorization server   {issuer}")
        _say(f"MCP server (OAuth)     {mcp_url}")
        _say(f"bridge home            {home}  (a throwaway vault; its key is a key file)")
        _say("\nstarting: mcp-bridge daemon   (owns logins, refreshes and remote sessions)")
        daemon = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mcp_bridge", "daemon", "--log-level", "debug",
            stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE, env=env,
        )  # fmt: skip
        narration = asyncio.create_task(_narrate(daemon))
        await _await_daemon(home)
        _say(f"starting: mcp-bridge run {mcp_url}   (what a desktop client launches)\n")
        bridge = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "mcp_bridge", "run", mcp_url,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL, env=env, limit=2**26,
        )  # fmt: skip
        client = ScriptedClient(bridge)
        init = await client.initialize()
        info = init.get("serverInfo", {})
        _say(f"   signed in; the server is {info.get('name')}, protocol {init['protocolVersion']}")
        await client.notify("notifications/initialized")
        tools = await client.request("tools/list", {})
        _say("   tools: " + ", ".join(tool["name"] for tool in tools.get("tools", [])))
        added = await client.request("tools/call", {"name": "add", "arguments": {"a": 2, "b": 3}})
        _say(f"   2 + 3 = {_text_of(added)}")
        who = await client.request("tools/call", {"name": "whoami", "arguments": {}})
        _say(f"   the server sees the token of: {json.dumps(who.get('structuredContent'))}")
        launched = await client.request(
            "tools/call",
            {"name": "countdown", "arguments": {"start": 3}, "_meta": {"progressToken": "demo"}},
        )
        _say(f"   countdown says {_text_of(launched)}")
        _say("\nclosing stdin: the daemon ends the remote session, and the bridge exits")
        assert bridge.stdin is not None
        bridge.stdin.close()
        async with asyncio.timeout(STEP_TIMEOUT_S):
            code = await bridge.wait()
        _say(f"bridge exited with status {code}; stopping the daemon")
        daemon.terminate()
        async with asyncio.timeout(STEP_TIMEOUT_S):
            await daemon.wait()
        await narration
        _say(f"authorization server saw: {_stats(issuer)}")
        return 0 if code == 0 else 1
    finally:
        for process in (bridge, daemon, server):
            if process is not None and process.returncode is None:
                process.terminate()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(5):
                        await process.wait()


async def _await_daemon(home: Path) -> None:
    """Until the daemon answers on its socket (a `run` started before would start its own)."""
    from mcp_bridge.paths import bridge_paths
    from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon

    paths = bridge_paths({"MCP_BRIDGE_HOME": str(home)})
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while True:
            try:
                await asyncio.to_thread(ask_daemon, paths, "status")
                return
            except DaemonUnavailable:
                await asyncio.sleep(0.05)


def _bridge_env(home: Path, *, headless: bool) -> dict[str, str]:
    env = {**os.environ, "MCP_BRIDGE_HOME": str(home), "MCP_BRIDGE_VAULT": "keyfile"}
    if headless:
        # webbrowser splits a $BROWSER entry holding %s into an argv list: no shell.
        env["BROWSER"] = f"{shlex.quote(sys.executable)} -m mcp_bridge.demo.headless_browser %s"
    return env


async def _narrate(daemon: asyncio.subprocess.Process) -> None:
    """Show the daemon's own account of the OAuth journey (its stderr, filtered)."""
    assert daemon.stderr is not None
    while line := await daemon.stderr.readline():
        text = line.decode(errors="replace").rstrip()
        text = text.removeprefix("mcp-bridge: ").removeprefix("DEBUG ").removeprefix("INFO ")
        if any(marker in text for marker in _SHOWN_LOG) or text.startswith("http"):
            _say(f"   daemon | {text}")


class ScriptedClient:
    """Plays a desktop MCP client on the bridge's stdin and stdout."""

    def __init__(self, bridge: asyncio.subprocess.Process) -> None:
        assert bridge.stdin is not None
        assert bridge.stdout is not None
        self._stdin = bridge.stdin
        self._stdout = bridge.stdout
        self._next_id = 0

    async def initialize(self) -> dict[str, Any]:
        """`initialize`, repeated while the sign-in is still under way (the bridge answers
        a request that waited too long for a login with 'finish signing in, then retry')."""
        params = {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "mcp-bridge-demo-client", "version": "1.0"},
        }
        async with asyncio.timeout(LOGIN_TIMEOUT_S):
            while True:
                reply = await self._exchange("initialize", params)
                if "result" in reply:
                    result: dict[str, Any] = reply["result"]
                    return result
                message = reply["error"].get("message", "")
                if "sign" not in message:
                    raise DemoFailed(f"initialize failed: {message}")
                _say("   (waiting for the sign-in in your browser...)")

    async def request(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        reply = await self._exchange(method, params)
        if "error" in reply:
            raise DemoFailed(f"{method} failed: {reply['error'].get('message')}")
        result: dict[str, Any] = reply["result"]
        return result

    async def notify(self, method: str) -> None:
        await self._send({"jsonrpc": "2.0", "method": method})

    async def _exchange(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        self._next_id += 1
        request_id = self._next_id
        await self._send({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params})
        while True:
            message = await self._receive()
            if message.get("id") == request_id and "method" not in message:
                return message

    async def _send(self, message: dict[str, Any]) -> None:
        _say(f"-> {_short(message)}")
        self._stdin.write(json.dumps(message).encode() + b"\n")
        await self._stdin.drain()

    async def _receive(self) -> dict[str, Any]:
        async with asyncio.timeout(LOGIN_TIMEOUT_S):
            line = await self._stdout.readline()
        if not line:
            raise DemoFailed("the bridge closed its stdout; see its log for why")
        message: dict[str, Any] = json.loads(line)
        _say(f"<- {_short(message)}")
        return message


async def _await_ready(server: asyncio.subprocess.Process) -> tuple[str, str]:
    assert server.stdout is not None
    async with asyncio.timeout(STEP_TIMEOUT_S):
        line = await server.stdout.readline()
    try:
        announced = json.loads(line)
        return announced["issuer"], announced["mcp_url"]
    except (ValueError, KeyError, TypeError) as exc:
        raise DemoFailed("the demo servers did not start") from exc


def _stats(issuer: str) -> str:
    with urllib.request.urlopen(f"{issuer}/stats", timeout=STEP_TIMEOUT_S) as response:
        stats = json.load(response)
    names = ("registrations", "authorizations", "token_exchanges", "refreshes")
    return ", ".join(f"{stats.get(name, 0)} {name.replace('_', ' ')}" for name in names)


def _text_of(result: dict[str, Any]) -> str:
    return " ".join(item.get("text", "") for item in result.get("content", []))


def _short(message: dict[str, Any], limit: int = 150) -> str:
    text = json.dumps(message, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _say(line: str) -> None:
    print(line, flush=True)
