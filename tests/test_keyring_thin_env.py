"""Desktop hosts launch servers without DBUS_SESSION_BUS_ADDRESS (docs/desktop-hosts.md): the
vault still finds the Secret Service on the user's session bus at $XDG_RUNTIME_DIR/bus."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mcp_bridge.store.keyring_source import find_session_bus
from tests.fixtures.secret_service import SecretServiceHandle

CHECK_VAULT = (
    "import asyncio\n"
    "from mcp_bridge.store.selection import open_vault\n"
    "vault = open_vault()\n"
    "asyncio.run(vault.check())\n"
    "print(vault.describe())\n"
)


def test_the_bus_socket_of_the_runtime_dir_is_used_when_none_is_given(tmp_path: Path) -> None:
    bus = tmp_path / "bus"
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(bus))
        environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
        find_session_bus(environ)
    assert environ["DBUS_SESSION_BUS_ADDRESS"] == f"unix:path={bus}"


def test_a_given_bus_address_is_never_replaced(tmp_path: Path) -> None:
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(str(tmp_path / "bus"))
        environ = {"XDG_RUNTIME_DIR": str(tmp_path), "DBUS_SESSION_BUS_ADDRESS": "unix:path=/x"}
        find_session_bus(environ)
    assert environ["DBUS_SESSION_BUS_ADDRESS"] == "unix:path=/x"


def test_a_file_that_is_no_socket_is_not_taken_for_a_bus(tmp_path: Path) -> None:
    (tmp_path / "bus").write_text("not a socket")
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    find_session_bus(environ)
    assert "DBUS_SESSION_BUS_ADDRESS" not in environ


@pytest.mark.keyring
def test_a_thin_host_environment_still_reaches_the_keyring(
    private_secret_service: SecretServiceHandle, tmp_path: Path
) -> None:
    runtime = private_secret_service.env["XDG_RUNTIME_DIR"]
    thin = {  # what an SDK-based host passes, plus the runtime dir and our home
        "HOME": str(tmp_path),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "XDG_RUNTIME_DIR": runtime,
        "MCP_BRIDGE_HOME": str(tmp_path / "bridge"),
    }
    checked = subprocess.run(
        [sys.executable, "-c", CHECK_VAULT],
        env=thin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    assert "OS keyring" in checked.stdout or "keyring" in checked.stdout
