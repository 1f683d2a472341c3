"""`mcp-bridge status`: the named servers, the daemon, the vault and the logins, as text and
as JSON, never a secret."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.bridge_process import mcp_bridge_cli, mcp_bridge_json

KEYFILE = {"MCP_BRIDGE_VAULT": "keyfile"}


async def test_status_lists_the_named_servers_and_says_no_daemon_runs(bridge_home: Path) -> None:
    added = await mcp_bridge_cli(bridge_home, "add", "work", "https://mcp.example/mcp", env={})
    assert added[0] == 0, added
    report = await mcp_bridge_json(bridge_home, "status", "--json", env=KEYFILE)
    assert report["servers"] == [{"name": "work", "url": "https://mcp.example/mcp"}]
    assert report["daemon"]["running"] is False
    assert report["logins"] == []
    code, said = await mcp_bridge_cli(bridge_home, "status", env=KEYFILE, stdout=True)
    assert code == 0, said
    assert "servers: work (https://mcp.example/mcp)" in said
    assert "daemon:  not running" in said


async def test_a_broken_servers_file_is_reported_not_fatal(bridge_home: Path) -> None:
    (bridge_home / "config").mkdir(parents=True)
    (bridge_home / "config" / "servers.toml").write_text("[servers.work\nurl = 1\n")
    code, said = await mcp_bridge_cli(bridge_home, "status", env=KEYFILE, stdout=True)
    assert code == 0, said
    assert "servers.toml cannot be read" in said
    assert "line 1" in said
