"""The daemon's life as a desktop lives it: started by the first shim and found by the
rest, killed and replaced with the login kept, a stale endpoint file, a second daemon, a
daemon left by another version, and the file it leaves when it stops. Real processes, a
real socket (Unix, and loopback TCP with its secret, as on Windows), the real demo
authorization server."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_bridge.daemon import endpoint_file, transport
from mcp_bridge.daemon.server import DaemonServer
from mcp_bridge.engine.registry import CredentialRegistry
from mcp_bridge.paths import BridgePaths, bridge_paths
from mcp_bridge.shim.connection import ask_daemon
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import (
    BridgeProcess,
    bridges_of,
    echo,
    mcp_bridge_cli,
    running_bridge,
)
from tests.fixtures.daemon_process import daemon_pid, daemon_process, daemons_under, wait_for_exit
from tests.fixtures.mcp_servers import ServerProcess, text_of


async def test_the_shim_relays_through_a_daemon_it_started(
    sdk_stateful: ServerProcess, bridge_home: Path, daemon_transport: str
) -> None:
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
    published = published_file(paths)
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "via the daemon")) == "via the daemon"
        assert daemons_under(bridge_home) == [daemon_pid(bridge_home)]
        code, said = await mcp_bridge_cli(bridge_home, "status", env={}, stdout=True)
        assert code == 0
        assert f"daemon:  running, pid {daemon_pid(bridge_home)}" in said
        assert "1 client(s) connected" in said
        assert published.parent.stat().st_mode & 0o777 == 0o700
        if daemon_transport == "tcp":
            assert published.stat().st_mode & 0o777 == 0o600
            endpoint = endpoint_file.parse_endpoint(published.read_bytes())
            assert endpoint is not None
            assert endpoint.pid == daemon_pid(bridge_home)
        assert await bridge.close_stdin_and_wait() == 0
    assert not published.exists()  # the daemon (stopped at the end) took it with it


async def test_five_shims_started_together_start_one_daemon_and_sign_in_once(
    auth_server: AuthServerFactory, bridge_home: Path, daemon_transport: str
) -> None:
    server = auth_server()
    async with bridges_of(bridge_home, server.mcp_url, count=5) as bridges:
        replies = await asyncio.gather(*(bridge.initialize() for bridge in bridges))
        assert all("result" in reply for reply in replies), replies
        tools = await asyncio.gather(*(bridge.request("tools/list") for bridge in bridges))
        assert all("result" in reply for reply in tools), tools
        echoes = await asyncio.gather(*(echo(bridge, f"n{i}") for i, bridge in enumerate(bridges)))
        assert [text_of(reply) for reply in echoes] == [f"n{i}" for i in range(5)]
        assert len(daemons_under(bridge_home)) == 1
    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"]) == (1, 1)


async def test_a_killed_daemon_is_restarted_and_the_login_survives(
    auth_server: AuthServerFactory, bridge_home: Path, daemon_transport: str
) -> None:
    """A SIGKILLed daemon leaves its socket or endpoint file behind: the shims find nobody
    there, start a new daemon and replay their clients' handshakes to it."""
    server = auth_server(access_ttl_s=3)
    async with bridges_of(bridge_home, server.mcp_url, count=2) as bridges:
        for bridge in bridges:
            assert "result" in await bridge.initialize()
            assert text_of(await echo(bridge, "before")) == "before"
        first_daemon = daemon_pid(bridge_home)

        killed = asyncio.Event()

        async def keep_calling(bridge: BridgeProcess) -> list[dict[str, object]]:
            replies: list[dict[str, object]] = []
            after_kill = 0
            while after_kill < 5:
                replies.append(await echo(bridge, "during"))
                after_kill += killed.is_set()
            return replies

        calls = [asyncio.create_task(keep_calling(bridge)) for bridge in bridges]
        await asyncio.sleep(0.3)
        os.kill(first_daemon, signal.SIGKILL)
        await asyncio.to_thread(wait_for_exit, first_daemon)
        killed.set()
        results = [reply for batch in await asyncio.gather(*calls) for reply in batch]
        # Every call is answered: with its result, or (in flight at the kill) an error.
        failed = [reply for reply in results if "error" in reply]
        assert len(failed) <= len(bridges), failed
        for reply in failed:
            assert "daemon stopped" in str(reply["error"])
        for bridge in bridges:
            assert text_of(await echo(bridge, "after")) == "after"
        assert daemon_pid(bridge_home) != first_daemon
    stats = server.stats()
    assert stats["authorizations"] == 1  # the new daemon found the tokens in the vault
    assert stats["reuse_detections"] == 0


@pytest.mark.parametrize("stale", ["dead pid, someone else's port", "live pid, closed port"])
async def test_a_stale_endpoint_file_leads_to_a_new_daemon(
    sdk_stateful: ServerProcess, bridge_home: Path, monkeypatch: pytest.MonkeyPatch, stale: str
) -> None:
    """A daemon that was killed leaves its endpoint file. The shim neither connects to a
    port that a dead daemon named (another program may listen there now, and would get
    the session's hello) nor waits on a port nobody listens on: it starts a daemon."""
    monkeypatch.setenv(transport.TRANSPORT_ENV, "tcp")
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
    with socket.create_server(("127.0.0.1", 0)) as someone_else:
        if stale == "dead pid, someone else's port":
            pid, port = _a_finished_process(), someone_else.getsockname()[1]
        else:
            pid, port = os.getpid(), _closed_port()  # this process: alive, not a daemon
        old = endpoint_file.LoopbackAddress(port, "left-behind", pid, "0.1.0")
        paths.state_dir.mkdir(parents=True)
        paths.daemon_endpoint_file.write_bytes(endpoint_file.encode_endpoint(old))
        async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
            assert "result" in await bridge.initialize()
            assert text_of(await echo(bridge, "new daemon")) == "new daemon"
            new = endpoint_file.parse_endpoint(paths.daemon_endpoint_file.read_bytes())
            assert new is not None
            assert new.pid == daemon_pid(bridge_home) != pid
        if port == someone_else.getsockname()[1]:
            someone_else.setblocking(False)
            with pytest.raises(BlockingIOError):
                someone_else.accept()  # nobody ever connected to it


async def test_a_stopping_daemon_leaves_a_file_that_is_no_longer_its_own(
    bridge_home: Path, daemon_transport: str
) -> None:
    """Another listener (systemd, a newer daemon) may own the socket path or have written
    the endpoint file by the time this one exits: removing it would cut every new shim
    off."""
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
    path = published_file(paths)
    registry = CredentialRegistry(paths)
    daemon = DaemonServer(registry, idle_exit_s=None)
    serving = asyncio.create_task(daemon.serve(transport.listen(paths)))
    await asyncio.sleep(0.05)
    path.unlink()
    with contextlib.ExitStack() as successor:
        if daemon_transport == "tcp":
            newer = endpoint_file.LoopbackAddress(1, "a newer daemon's", os.getpid(), "0.1.0")
            path.write_bytes(endpoint_file.encode_endpoint(newer))
        else:
            listener = successor.enter_context(socket.socket(socket.AF_UNIX))
            listener.bind(str(path))
        daemon.stop()
        await serving
        await daemon.aclose()
        assert path.exists()


async def test_a_second_daemon_says_one_is_running_and_leaves_it_alone(
    sdk_stateful: ServerProcess, bridge_home: Path, daemon_transport: str
) -> None:
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        assert "result" in await bridge.initialize()
        code, said = await mcp_bridge_cli(bridge_home, "daemon", env={})
        assert code == 1
        assert "another mcp-bridge daemon is listening" in said
        assert "Traceback" not in said
        assert text_of(await echo(bridge, "first daemon")) == "first daemon"


async def test_a_daemon_left_by_another_version_is_retired_and_replaced(
    sdk_stateful: ServerProcess, bridge_home: Path, daemon_transport: str
) -> None:
    """An upgrade leaves the old daemon running: the first new shim stops it (`stop` is
    understood by every version) and starts a current one."""
    old_version = (
        "import sys, mcp_bridge; mcp_bridge.__version__ = '0.0.1-old'; "
        "from mcp_bridge.cli import main; sys.exit(main(['daemon']))"
    )
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
    async with daemon_process(bridge_home, old_version) as old:
        assert ask_daemon(paths, "status")["version"] == "0.0.1-old"
        async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
            assert "result" in await bridge.initialize()
            assert text_of(await echo(bridge, "current")) == "current"
            assert ask_daemon(paths, "status")["version"] != "0.0.1-old"
        assert await asyncio.wait_for(old.wait(), 15) == 0


# -- helpers ----------------------------------------------------------------------------


def _a_finished_process() -> int:
    """The pid of a process that has exited and been reaped."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    return int(done.stdout)


def _closed_port() -> int:
    """A loopback port nobody listens on (one the OS just handed out, then closed)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port: int = listener.getsockname()[1]
    return port


def published_file(paths: BridgePaths) -> Path:
    """What the daemon makes to be found: the socket file, or the endpoint file."""
    if transport.uses_loopback():
        return paths.daemon_endpoint_file
    return paths.daemon_socket()
