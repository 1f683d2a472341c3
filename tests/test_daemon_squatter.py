"""Loopback TCP with a program on the port the endpoint file names: a daemon that died
(killed, so the file stayed) and a pid reused, so the shim does connect. Real shims, real
daemons, a real MCP server; the squatter is a plain socket server (tests/fixtures)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from mcp_bridge.daemon import endpoint_file, transport
from mcp_bridge.paths import bridge_paths
from tests.fixtures.bridge_process import echo, running_bridge
from tests.fixtures.mcp_servers import ServerProcess, text_of
from tests.fixtures.squatter import HANGS_UP, SILENT, squatting

SECRET = "the-dead-daemons-secret-0123456789abcdef"
HEADER_VALUE = "static-header-value-that-must-stay-home"
WRONG_MAC = b'{"mcp-bridge":2,"challenge":"' + b"ab" * 32 + b'","proof":"' + b"cd" * 32 + b'"}\n'
PROTOCOL_1_REFUSAL = (
    b'{"mcp-bridge":1,"error":"The hello carries no daemon secret","next_step":"","config":false}\n'
)


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        (WRONG_MAC, "its proof does not match the secret in daemon.endpoint"),
        (PROTOCOL_1_REFUSAL, "a daemon of an older mcp-bridge"),
        (b"HTTP/1.1 400 Bad Request\r\n", "not JSON"),
        (HANGS_UP, "closed the connection without answering the challenge"),
        (SILENT, "did not answer the challenge within 5 s"),
    ],
    ids=["wrong MAC", "protocol 1 refusal", "not JSON", "hangs up", "silent"],
)
async def test_a_squatter_gets_no_secret_and_no_profile_and_the_client_is_served(
    sdk_stateful: ServerProcess,
    bridge_home: Path,
    monkeypatch: pytest.MonkeyPatch,
    answer: bytes | None,
    complaint: str,
) -> None:
    monkeypatch.setenv(transport.TRANSPORT_ENV, "tcp")
    paths = bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)})
    with squatting(answer) as squatter:
        # A live pid (this test's own): the shim does connect to the squatter's port.
        left = endpoint_file.LoopbackAddress(squatter.port, SECRET, os.getpid(), "0.1.0")
        paths.state_dir.mkdir(parents=True)
        paths.daemon_endpoint_file.write_bytes(endpoint_file.encode_endpoint(left))
        header = f"X-Static: {HEADER_VALUE}"
        async with running_bridge(bridge_home, sdk_stateful.url, "--header", header) as bridge:
            assert "result" in await bridge.initialize()
            assert text_of(await echo(bridge, "fresh daemon")) == "fresh daemon"
            new = transport.find_daemon(paths)
            assert isinstance(new, endpoint_file.LoopbackAddress)
            assert new.port != squatter.port
            assert new.secret != SECRET
            assert await bridge.close_stdin_and_wait() == 0
            assert bridge.process.stderr is not None
            said = (await bridge.process.stderr.read()).decode()
    for secret_or_profile in (SECRET, HEADER_VALUE, sdk_stateful.url, "session"):
        assert secret_or_profile.encode() not in squatter.everything
    # The shim, then the daemon it started (checking the endpoint before it replaced
    # it): each sent one line, a challenge, and nothing more.
    assert squatter.received
    for sent in squatter.received:
        assert set(json.loads(sent)) == {"mcp-bridge", "challenge"}
    assert f"not using 127.0.0.1:{squatter.port} (pid {os.getpid()}" in said
    assert complaint in said
    assert "nothing was sent to it" in said
    assert SECRET not in said
    assert "Traceback" not in said
    daemon_log = paths.log_file("daemon").read_text()
    assert f"daemon.endpoint named 127.0.0.1:{squatter.port}" in daemon_log
