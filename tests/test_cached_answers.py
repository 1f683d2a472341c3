"""A known server is answered from its cached answers: while it is down, with a cold
daemon, from a host's thin environment; a stale tool list is corrected by list_changed;
and a probe of a server whose login is gone opens no browser."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from mcp_bridge.engine.answer_cache import cache_file
from mcp_bridge.paths import bridge_paths
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import echo, mcp_bridge_cli, oauth_env, running_bridge
from tests.fixtures.daemon_process import stop_daemon
from tests.fixtures.mcp_servers import ServerProcess, text_of

DISCOVER_PROBE = {
    "_meta": {
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientInfo": {"name": "probe", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
}


async def first_session(
    home: Path, url: str, env: dict[str, str] | None = None
) -> dict[str, object]:
    """A client's whole first visit: handshake, tool list, a call. Its answers."""
    async with running_bridge(home, url, env=env) as bridge:
        init = await bridge.initialize()
        tools = await bridge.request("tools/list")
        assert text_of(await echo(bridge, "first")) == "first"
        assert await bridge.close_stdin_and_wait() == 0
    return {"initialize": init["result"], "tools": tools["result"]}


async def test_a_known_server_is_answered_from_the_cache_while_it_is_down(
    own_sdk_stateful: ServerProcess, bridge_home: Path
) -> None:
    seen = await first_session(bridge_home, own_sdk_stateful.url)
    own_sdk_stateful.stop()
    await asyncio.to_thread(stop_daemon, bridge_home)  # a cold daemon, too
    async with running_bridge(bridge_home, own_sdk_stateful.url) as bridge:
        init = await bridge.initialize()
        assert init["result"] == seen["initialize"]
        tools = await bridge.request("tools/list")
        assert tools["result"] == seen["tools"]
        failed = await echo(bridge, "down")
        assert own_sdk_stateful.url in failed["error"]["message"]  # the remote is asked
        assert await bridge.close_stdin_and_wait() == 0


async def test_a_thin_environment_probe_is_answered_from_the_cache(
    own_sdk_stateful: ServerProcess, tmp_path: Path
) -> None:
    """HOME, PATH and USER only, as hosts pass them: no XDG variables, no MCP_BRIDGE_HOME.
    The probe (a string id, as Claude Code sends it) comes to a cold daemon and a remote
    that is down: only the cache can answer it."""
    thin = {"HOME": str(tmp_path), "PATH": os.environ["PATH"], "USER": "probe"}
    async with running_bridge(tmp_path, own_sdk_stateful.url, exact_env=thin) as bridge:
        first = await bridge.request("server/discover", DISCOVER_PROBE, request_id="probe-1")
        assert "result" in first, first
        assert await bridge.close_stdin_and_wait() == 0
    own_sdk_stateful.stop()
    assert stop_thin_daemon(thin).returncode == 0
    async with running_bridge(tmp_path, own_sdk_stateful.url, exact_env=thin) as bridge:
        again = await bridge.request("server/discover", DISCOVER_PROBE, request_id="probe-2")
        assert again["result"] == first["result"]
        assert await bridge.close_stdin_and_wait() == 0
    stop_thin_daemon(thin)


async def test_a_stale_tool_list_is_corrected_with_list_changed(
    sdk_stateful: ServerProcess, bridge_home: Path
) -> None:
    seen = await first_session(bridge_home, sdk_stateful.url)
    await asyncio.to_thread(stop_daemon, bridge_home)
    stale: dict[str, object] = {"tools": [{"name": "gone", "inputSchema": {"type": "object"}}]}
    rewrite_cached_tools(bridge_home, sdk_stateful.url, stale)
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        await bridge.initialize()
        assert (await bridge.request("tools/list"))["result"] == stale  # answered at once
        await bridge.wait_for_notification(
            lambda note: note["method"] == "notifications/tools/list_changed"
        )
        assert (await bridge.request("tools/list"))["result"] == seen["tools"]
        assert await bridge.close_stdin_and_wait() == 0


async def test_a_probe_of_a_server_whose_login_is_gone_opens_no_browser(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    await first_session(bridge_home, server.mcp_url, env=oauth_env())
    assert (await mcp_bridge_cli(bridge_home, "logout", server.mcp_url, env=oauth_env()))[0] == 0
    await asyncio.to_thread(stop_daemon, bridge_home)
    before = server.stats()["authorize_requests"]
    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert "result" in await bridge.request("tools/list")
        await asyncio.sleep(2)  # the daemon rechecks the cache meanwhile: it meets a 401
        assert server.stats()["authorize_requests"] == before
        # The first real request is the one that signs in.
        assert text_of(await echo(bridge, "now")) == "now"
        assert server.stats()["authorize_requests"] == before + 1
        assert await bridge.close_stdin_and_wait() == 0


def stop_thin_daemon(env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "mcp_bridge", "daemon", "stop"]
    return subprocess.run(command, env=env, capture_output=True, timeout=30, check=False)


def rewrite_cached_tools(home: Path, url: str, tools: dict[str, object]) -> None:
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(home)})
    path = cache_file(paths.answer_cache_dir, url)
    doc = json.loads(path.read_text())
    keys = [key for key in doc["answers"] if key.startswith("tools/list@")]
    assert keys, doc
    for key in keys:
        doc["answers"][key] = tools
    path.write_text(json.dumps(doc))
