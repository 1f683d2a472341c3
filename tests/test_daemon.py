"""The daemon and its shims as a desktop uses them: real processes, a real socket (Unix,
and loopback TCP with its secret, as on Windows), the real demo authorization server."""

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

from mcp_bridge.daemon import endpoint_file, proof, transport
from mcp_bridge.daemon.server import DaemonServer
from mcp_bridge.engine.registry import CredentialRegistry
from mcp_bridge.paths import BridgePaths, bridge_paths
from mcp_bridge.shim.connection import ask_daemon
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import (
    BridgeProcess,
    daemon_process,
    daemons_under,
    echo,
    mcp_bridge_cli,
    mcp_bridge_json,
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


async def test_another_user_cannot_reach_the_daemon(
    sdk_stateful: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.getuid() != 0:
        pytest.skip("creating a second user needs root (CI runs as root)")
    monkeypatch.setenv(transport.TRANSPORT_ENV, "unix")  # the uid check is the socket's
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
    sdk_stateful: ServerProcess, bridge_home: Path, daemon_transport: str
) -> None:
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        assert "result" in await bridge.initialize()
        paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
        cases: list[tuple[dict[str, object] | bytes, str]] = [
            ({"mcp-bridge": 99, "session": {}}, "speaks daemon protocol 99"),
            ({"mcp-bridge": 2, "session": {"url": "ftp://x/"}}, "scheme"),
            (b"hello daemon", "not JSON"),
        ]
        for hello_line, complaint in cases:
            reply = await asyncio.to_thread(_exchange, paths, hello_line)
            assert complaint in str(reply["error"]), reply
        assert text_of(await echo(bridge, "unharmed")) == "unharmed"


REFLECTED = "the daemon's own proof, sent back"


@pytest.mark.parametrize(
    ("opening", "complaint"),
    [
        (
            "a protocol 1 hello with the secret",
            "The first line to the daemon speaks daemon protocol 1; this side speaks 2",
        ),
        ("a hello, no challenge", "The first line to the daemon carries no challenge"),
        ("no proof", "The hello carries no proof of the daemon secret"),
        (REFLECTED, "The hello's proof does not match this daemon's secret"),
    ],
)
async def test_loopback_refuses_a_peer_that_does_not_prove_itself_in_one_line(
    sdk_stateful: ServerProcess,
    bridge_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    opening: str,
    complaint: str,
) -> None:
    """Any local process can connect to 127.0.0.1: one that does not prove it holds the
    secret from the user's own endpoint file gets one line saying why, the connection is
    closed, and `stop` is no exception. An older shim's hello, which carried the secret
    itself, is refused too: the daemon takes no secret from the wire."""
    monkeypatch.setenv(transport.TRANSPORT_ENV, "tcp")
    async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
        assert "result" in await bridge.initialize()
        paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
        address = transport.find_daemon(paths)
        assert isinstance(address, endpoint_file.LoopbackAddress)
        for command in ("status", "stop"):
            with socket.create_connection(("127.0.0.1", address.port), timeout=15) as sock:
                said = await asyncio.to_thread(_open_with, sock, opening, command, address)
            refusal, rest = said
            assert json.loads(refusal)["error"] == complaint
            assert address.secret not in refusal
            assert rest == b""  # and then the daemon hung up
        assert text_of(await echo(bridge, "still served")) == "still served"
        assert daemon_pid(bridge_home) == address.pid


def _open_with(
    sock: socket.socket, opening: str, command: str, address: endpoint_file.LoopbackAddress
) -> tuple[str, bytes]:
    """Open a connection the way `opening` names; the daemon's refusal and what followed."""
    hello_line: dict[str, object] = {"mcp-bridge": 2, "command": command}
    with sock.makefile("rwb") as lines:
        if opening == "a protocol 1 hello with the secret":
            hello_line = {"mcp-bridge": 1, "command": command, "secret": address.secret}
        elif opening != "a hello, no challenge":
            shim = proof.ShimProof(address.secret, os.urandom(proof.NONCE_BYTES))
            lines.write(shim.challenge() + b"\n")
            lines.flush()
            answer = json.loads(lines.readline())
            if opening == REFLECTED:
                hello_line["proof"] = answer["proof"]
        lines.write(json.dumps(hello_line).encode() + b"\n")
        lines.flush()
        return lines.readline().decode(), lines.read()


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


async def test_the_shim_runs_without_fcntl_and_unix_sockets_as_on_windows(
    sdk_stateful: ServerProcess, bridge_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Windows' Python has neither `fcntl` nor `socket.AF_UNIX`. With both taken away (a
    sitecustomize), the shim still imports, picks loopback TCP by itself (no
    MCP_BRIDGE_DAEMON_TRANSPORT) and relays through the daemon listening there, and
    `daemon status` reaches it too. (Starting a daemon takes the start lock, which is
    msvcrt's on Windows and cannot run here: that daemon is started beforehand.)"""
    windows_like = tmp_path / "windows-like"
    windows_like.mkdir()
    (windows_like / "sitecustomize.py").write_text(
        "import socket, sys\n"
        "del socket.AF_UNIX\n"
        "sys.modules['fcntl'] = None  # `import fcntl` raises ImportError\n"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(bridge_home),
        "MCP_BRIDGE_HOME": str(bridge_home),
        "PYTHONPATH": str(windows_like),
    }
    monkeypatch.setenv(transport.TRANSPORT_ENV, "tcp")
    async with (
        daemon_process(bridge_home),
        running_bridge(bridge_home, sdk_stateful.url, exact_env=env) as bridge,
    ):
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "no AF_UNIX")) == "no AF_UNIX"
        # Unset there as well: `daemon status` picks the transport by itself too. It can
        # only reach the loopback daemon, and count the shim's session on it, where the
        # sitecustomize did take AF_UNIX (and fcntl with it) away.
        no_choice = {**env, transport.TRANSPORT_ENV: ""}
        status = await mcp_bridge_json(bridge_home, "daemon", "status", env=no_choice)
        assert status["connections"] == 1  # the shim's session
        assert await bridge.close_stdin_and_wait() == 0


def test_the_shim_imports_none_of_the_heavy_libraries(
    bridge_home: Path, daemon_transport: str
) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(bridge_home),
        "MCP_BRIDGE_HOME": str(bridge_home),
        transport.TRANSPORT_ENV: daemon_transport,
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
    # shutil too: argparse imports it for the help width, and its compression modules cost
    # each shim ~0.6 MB (5 servers in 110 MB is a target).
    heavy = {"aiohttp", "mcp", "keyring", "cryptography", "asyncio", "platformdirs", "shutil"}
    assert not heavy & {name.split(".")[0] for name in imported}
    stop_daemon(bridge_home)


async def test_a_daemon_serving_servers_without_oauth_loads_no_credential_libraries(
    sdk_stateful: ServerProcess, bridge_home: Path, tmp_path: Path
) -> None:
    """Memory is a requirement: the vault (cryptography), the keyring and the SDK cost the
    daemon ~10 MB each and are loaded only when a server needs a login."""
    modules_file = tmp_path / "modules.txt"
    record_modules_at_exit = textwrap.dedent(f"""
        import atexit, sys
        atexit.register(
            lambda: open({str(modules_file)!r}, "w").write("\\n".join(sys.modules))
        )
        from mcp_bridge.cli import main
        sys.exit(main(["daemon"]))
    """)
    async with daemon_process(bridge_home, record_modules_at_exit) as daemon:
        async with running_bridge(bridge_home, sdk_stateful.url) as bridge:
            assert "result" in await bridge.initialize()
            assert text_of(await echo(bridge, "no login")) == "no login"
            assert await bridge.close_stdin_and_wait() == 0
        stop_daemon(bridge_home)
        await daemon.wait()
    loaded = {name.split(".")[0] for name in modules_file.read_text().split()}
    assert "aiohttp" in loaded  # it did serve the server
    assert not {"cryptography", "keyring", "mcp", "jwt"} & loaded


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


def _exchange(paths: BridgePaths, hello_line: dict[str, object] | bytes) -> dict[str, object]:
    """The daemon's answer to `hello_line`: a JSON object (with the secret the transport
    asks for), or raw bytes."""
    address = transport.find_daemon(paths)
    assert address is not None
    link = transport.connect(address)
    assert link is not None
    if isinstance(hello_line, dict):
        hello_line = json.dumps({**hello_line, **link.hello_fields}).encode()
    with link.sock as sock:
        sock.settimeout(15)
        sock.sendall(hello_line + b"\n")
        reply, _ = _line_and_rest(sock)
    decoded: dict[str, object] = json.loads(reply)
    return decoded


def _line_and_rest(sock: socket.socket) -> tuple[str, bytes]:
    """The first line the daemon sent, and all it sent after it until it closed."""
    with sock.makefile("rb") as lines:
        return lines.readline().decode(), lines.read()


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
