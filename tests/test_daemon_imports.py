"""What the shim and the daemon load: the shim none of the heavy libraries, and it runs
where Windows' Python lacks fcntl and Unix sockets; a daemon serving servers without
OAuth no credential libraries. Real processes, a real socket."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mcp_bridge.daemon import transport
from tests.fixtures.bridge_process import echo, mcp_bridge_json, running_bridge
from tests.fixtures.daemon_process import daemon_process, stop_daemon
from tests.fixtures.mcp_servers import ServerProcess, text_of


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
