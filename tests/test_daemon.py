"""The daemon and its shims as a desktop uses them: real processes, a real socket, the
real demo authorization server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from mcp_bridge.daemon.server import DaemonServer, bind_socket
from mcp_bridge.engine.registry import CredentialRegistry
from mcp_bridge.paths import bridge_paths
from mcp_bridge.shim.connection import DaemonUnavailable, ask_daemon
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import (
    BridgeProcess,
    daemons_under,
    echo,
    mcp_bridge_cli,
    oauth_env,
    running_bridge,
    stop_daemon,
    wait_for_exit,
)
from tests.fixtures.mcp_servers import ServerProcess, text_of

OTHER_USER = "mcp-bridge-tests"


def daemon_pid(home: Path) -> int:
    pid = ask_daemon(bridge_paths({"MCP_BRIDGE_HOME": str(home)}), "status")["pid"]
    assert isinstance(pid, int)
    return pid


async def test_the_shim_relays_through_a_daemon_it_started(
    sdk_stateful: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "via the daemon")) == "via the daemon"
        assert daemons_under(bridge_home) == [daemon_pid(bridge_home)]
        code, said = await mcp_bridge_cli(bridge_home, "status", env={}, stdout=True)
        assert code == 0
        assert f"daemon:  running, pid {daemon_pid(bridge_home)}" in said
        assert "1 client(s) connected" in said
        assert await bridge.close_stdin_and_wait() == 0
    socket_dir = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)}).daemon_socket().parent
    assert socket_dir.stat().st_mode & 0o777 == 0o700


async def test_five_shims_started_together_start_one_daemon_and_sign_in_once(
    auth_server: AuthServerFactory, bridge_home: Path
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
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
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


async def test_another_user_cannot_reach_the_daemon(sdk_stateful: ServerProcess) -> None:
    if os.getuid() != 0:
        pytest.skip("creating a second user needs root (CI runs as root)")
    other = _other_user()
    # A home the other user can walk to (pytest's own temp root is 0700).
    with tempfile.TemporaryDirectory(prefix="mcp-bridge-uid-", dir="/tmp") as name:
        home = Path(name)
        os.chmod(home, 0o755)
        async with running_bridge(home, sdk_stateful.url) as bridge:
            assert "result" in await bridge.initialize()
            path = bridge_paths({"MCP_BRIDGE_HOME": str(home)}).daemon_socket()
            assert path.parent.parent == home
            # The 0700 directory keeps the other user out...
            assert "PermissionError" in _connect_as(other, path)
            # ...and were it opened by mistake, the peer's uid is checked as well.
            path.parent.chmod(0o755)
            path.chmod(0o777)
            try:
                reply = _connect_as(other, path)
            finally:
                path.parent.chmod(0o700)
            assert "serves another user" in reply
            assert text_of(await echo(bridge, "still here")) == "still here"


async def test_a_wrong_or_silent_hello_gets_an_answer_not_a_hang(
    sdk_stateful: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        assert "result" in await bridge.initialize()
        path = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)}).daemon_socket()
        for first_line, complaint in [
            (b'{"mcp-bridge":99,"session":{}}\n', "speaks daemon protocol 99"),
            (b"hello daemon\n", "not JSON"),
            (b'{"mcp-bridge":1,"session":{"url":"ftp://x/"}}\n', "scheme"),
        ]:
            reply = await asyncio.to_thread(_exchange, path, first_line)
            assert complaint in str(reply["error"]), reply
        assert text_of(await echo(bridge, "unharmed")) == "unharmed"


def test_the_shim_imports_none_of_the_heavy_libraries(bridge_home: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(bridge_home),
        "MCP_BRIDGE_HOME": str(bridge_home),
    }
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mcp_bridge", "run", "http://127.0.0.1:9/mcp"],
        input=b"",
        capture_output=True,
        env=env,
        timeout=60,
    )
    imported = {
        line.split("|")[-1].strip()
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert "mcp_bridge.shim.relay" in imported  # it did run the shim
    heavy = {"aiohttp", "mcp", "keyring", "cryptography", "asyncio", "platformdirs"}
    assert not heavy & {name.split(".")[0] for name in imported}
    stop_daemon(bridge_home)


# -- helpers ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def bridges_of(home: Path, url: str, *, count: int) -> AsyncIterator[list[BridgeProcess]]:
    """`count` shims for `url`, started together, as a desktop's hosts start them."""
    async with contextlib.AsyncExitStack() as exits:
        started = [running_bridge(home, url, env=oauth_env()) for _ in range(count)]
        yield list(await asyncio.gather(*(exits.enter_async_context(b) for b in started)))


def _other_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", OTHER_USER], check=True, timeout=30
        )
        return pwd.getpwnam(OTHER_USER)


def _connect_as(user: pwd.struct_passwd, path: Path) -> str:
    script = textwrap.dedent(f"""
        import socket
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect({str(path)!r})
            try:
                s.sendall(b'{{"mcp-bridge":1,"command":"status"}}\\n')
            except BrokenPipeError:
                pass  # refused at once: the daemon's answer is still there to read
            print(s.recv(4096).decode())
        except OSError as e:
            print(type(e).__name__, e)
    """)
    # A system interpreter: the other user may not enter the directory of ours (a venv
    # under /root) that sys.executable lives in.
    interpreter = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or "python3"
    done = subprocess.run(
        [interpreter, "-c", script],
        user=user.pw_uid,
        group=user.pw_gid,
        capture_output=True,
        timeout=30,
        cwd="/",
    )
    return done.stdout.decode() + done.stderr.decode()


def _exchange(path: Path, first_line: bytes) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(15)
        sock.connect(str(path))
        sock.sendall(first_line)
        reply = sock.makefile("rb").readline()
    decoded: dict[str, object] = json.loads(reply)
    return decoded


async def test_a_stopping_daemon_leaves_a_socket_that_is_no_longer_its_own(
    bridge_home: Path,
) -> None:
    """Another listener (systemd, a newer daemon) may own the path by the time this one
    exits: removing that file would cut every new shim off."""
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
    path = paths.daemon_socket()
    registry = CredentialRegistry(paths)
    daemon = DaemonServer(registry, idle_exit_s=None, socket_path=path)
    serving = asyncio.create_task(daemon.serve(bind_socket(path)))
    await asyncio.sleep(0.05)
    path.unlink()
    successor = socket.socket(socket.AF_UNIX)
    successor.bind(str(path))
    try:
        daemon.stop()
        await serving
        await daemon.aclose()
        assert path.exists()
    finally:
        successor.close()


async def test_a_second_daemon_says_one_is_running_and_leaves_it_alone(
    sdk_stateful: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        assert "result" in await bridge.initialize()
        code, said = await mcp_bridge_cli(bridge_home, "daemon", env={})
        assert code == 1
        assert "another mcp-bridge daemon is listening" in said
        assert "Traceback" not in said
        assert text_of(await echo(bridge, "first daemon")) == "first daemon"


async def test_a_daemon_left_by_another_version_is_retired_and_replaced(
    sdk_stateful: ServerProcess, bridge_home: Path
) -> None:
    """An upgrade leaves the old daemon running: the first new shim stops it (`stop` is
    understood by every version) and starts a current one."""
    old_version = (
        "import sys, mcp_bridge; mcp_bridge.__version__ = '0.0.1-old'; "
        "from mcp_bridge.cli import main; sys.exit(main(['daemon']))"
    )
    env = {**os.environ, "MCP_BRIDGE_HOME": str(bridge_home)}
    old = await asyncio.create_subprocess_exec(sys.executable, "-c", old_version, env=env)
    try:
        paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
        for _ in range(200):
            with contextlib.suppress(DaemonUnavailable):
                assert ask_daemon(paths, "status")["version"] == "0.0.1-old"
                break
            await asyncio.sleep(0.05)
        async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
            assert "result" in await bridge.initialize()
            assert text_of(await echo(bridge, "current")) == "current"
            assert ask_daemon(paths, "status")["version"] != "0.0.1-old"
        assert await asyncio.wait_for(old.wait(), 15) == 0
    finally:
        if old.returncode is None:
            old.kill()
            await old.wait()
