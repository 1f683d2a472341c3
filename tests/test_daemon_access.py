"""Who may talk to the daemon: not another user (the socket's directory and the peer's
uid), not a peer whose first line is wrong or silent, not a loopback peer that does not
prove it holds the secret. Real processes, a real socket (Unix, and loopback TCP with its
secret, as on Windows)."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from mcp_bridge.daemon import endpoint_file, proof, transport
from mcp_bridge.paths import BridgePaths, bridge_paths
from tests.fixtures.bridge_process import echo, running_bridge
from tests.fixtures.daemon_process import daemon_pid
from tests.fixtures.mcp_servers import ServerProcess, text_of

OTHER_USER = "mcp-bridge-tests"


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


# -- helpers ----------------------------------------------------------------------------


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
