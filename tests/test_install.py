"""`mcp-bridge install|uninstall CLIENT SERVER` against a temporary HOME (APPDATA and
LOCALAPPDATA set), for every client and, where the file's place depends on it, every OS:
the file parses, every other byte survives, a second run changes nothing, uninstall gives
the original text back, a broken file is refused untouched, --dry-run writes nothing. The
text edits themselves are tested in test_host_config_edits.py."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from mcp_bridge.cli import install_command
from mcp_bridge.cli.app import build_parser, run_cli
from mcp_bridge.errors import BridgeError, ConfigError
from mcp_bridge.hosts import clients, config_file
from mcp_bridge.hosts.clients import CLIENTS, Platform, System
from mcp_bridge.hosts.jsonc import parse
from tests.fixtures.edit_checks import inserted

URL = "https://mcp.example.com/mcp?team=ünï"
COMMAND = {"win32": ["C:\\Tools\\mcp-bridge.exe"], "darwin": ["/opt/mb/bin/mcp-bridge"]}
SYSTEMS: tuple[System, ...] = ("linux", "darwin", "win32")
# Other servers written by hand: odd spacing, tabs, unicode, escapes, numbers json.dumps
# would spell otherwise, no final newline.
STRICT = (
    '{ "numStartups" :7,\n  "@KEY@": {\n    "other":   {"command": "npx",\n\t"args": '
    '["-y", "mcp-remote", "https://x/é?a=1&b=2"], "env": {"K": "ü\\u00e9\\"q"}},\n'
    '    "second": {}\n  },\n  "tips": {"a": [1, 2.50, -0e3, 1E+2]}\n}'
)
LENIENT = (
    '// my settings\n{\n  "theme": "One Dark", // the theme\n  /* servers: */\n'
    '  "@KEY@": { // mine\n    "other": {"command": "npx", "args": ["-y", "x",],}, '
    '// trailing\n  },\n  "ui_font_size": 16,\n}\n'
)


def _platform(tmp_path: Path, system: System) -> Platform:
    env = {"APPDATA": str(tmp_path / "roaming"), "LOCALAPPDATA": str(tmp_path / "local")}
    return Platform(system, tmp_path / "home", env)


def _args(*argv: str) -> argparse.Namespace:
    return build_parser(("install_command",)).parse_args(list(argv))


def _run(platform: Platform, *argv: str) -> None:
    command = COMMAND.get(platform.system, ["/usr/lib/mcp bridge/bin/mcp-bridge"])
    install_command.carry_out(_args(*argv), platform, command)


def _seed(client: str, newline: str) -> str:
    spec = CLIENTS[client]
    text = (LENIENT if spec.lenient else STRICT).replace("@KEY@", spec.key)
    return text.replace("\n", newline)


def _data(client: str, text: str) -> object:
    return parse(text, lenient=CLIENTS[client].lenient).data()


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + config_file.BACKUP_SUFFIX + "*"))


@pytest.mark.parametrize("system", SYSTEMS)
@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_install_twice_then_uninstall_leaves_other_entries_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], system: System, client: str, newline: str
) -> None:
    platform = _platform(tmp_path, system)
    (path,) = CLIENTS[client].files(platform)
    path.parent.mkdir(parents=True)
    seed = _seed(client, newline)
    path.write_bytes(seed.encode())
    path.chmod(0o640)

    _run(platform, "install", client, URL, "--as", "example")
    after = path.read_bytes().decode()
    out = capsys.readouterr().out
    assert f"+++ {path}" in out
    assert "wrote" in out
    assert inserted(seed, after)
    data = _data(client, after)
    assert isinstance(data, dict)
    entry = data[CLIENTS[client].key]["example"]
    assert entry["command"] == COMMAND.get(system, ["/usr/lib/mcp bridge/bin/mcp-bridge"])[0]
    assert entry["args"] == ["run", URL]
    assert ("type" in entry) == (client in ("claude-code", "vscode"))
    assert path.stat().st_mode & 0o777 == 0o640
    (backup,) = _backups(path)
    assert backup.read_bytes() == seed.encode()

    _run(platform, "install", client, URL, "--as", "example")
    assert "already installed" in capsys.readouterr().out
    assert path.read_bytes().decode() == after
    assert len(_backups(path)) == 1

    _run(platform, "uninstall", client, URL, "--as", "example")
    assert path.read_bytes().decode() == seed
    _run(platform, "uninstall", client, URL, "--as", "example")
    assert "nothing to remove" in capsys.readouterr().out
    assert path.read_bytes().decode() == seed


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_missing_file_is_made_and_dry_run_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], client: str
) -> None:
    platform = _platform(tmp_path, "linux")
    (path,) = CLIENTS[client].files(platform)
    _run(platform, "install", client, "notion", "--dry-run")
    out = capsys.readouterr().out
    assert "+++ " in out
    assert "would write" in out
    assert not path.exists()
    assert not path.parent.exists()

    _run(platform, "install", client, "notion")
    assert json.loads(path.read_text())[CLIENTS[client].key]["notion"]["args"] == ["run", "notion"]
    assert path.stat().st_mode & 0o777 == 0o600
    assert _backups(path) == []
    before = path.read_bytes()
    _run(platform, "uninstall", client, "notion", "--dry-run")
    assert path.read_bytes() == before


BROKEN = [
    '{"a": 1',
    "[1, 2]",
    '{"a": NaN}',
    "{'a': 1}",
    '{"a": 1} x',
    '{"a": "\\q"}',
    '{"@KEY@": []}',
    '{"@KEY@": {"mcp.example.com": {}, "mcp.example.com": {}}}',
    '{"@KEY@": {}, "@KEY@": {}}',
]


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize("broken", [*BROKEN, '{"a": 1} // c', '{"a": [1,]}'])
def test_a_broken_file_is_refused_untouched(tmp_path: Path, client: str, broken: str) -> None:
    if CLIENTS[client].lenient and broken not in BROKEN:
        return  # comments and trailing commas: what Zed and VS Code read
    broken = broken.replace("@KEY@", CLIENTS[client].key)
    platform = _platform(tmp_path, "linux")
    (path,) = CLIENTS[client].files(platform)
    path.parent.mkdir(parents=True)
    path.write_text(broken)
    for action in ("install", "uninstall"):
        with pytest.raises(ConfigError, match="it was left as it is"):
            _run(platform, action, client, URL)
    assert path.read_text() == broken
    assert _backups(path) == []


def test_claude_desktop_on_windows_writes_the_msix_file_and_the_plain_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = _platform(tmp_path, "win32")
    assert CLIENTS["claude-desktop"].files(platform) == [
        tmp_path / "roaming" / "Claude" / "claude_desktop_config.json"
    ]
    (tmp_path / "local" / "Packages" / "Claude_pzs8sxrjxfjjc").mkdir(parents=True)
    paths = CLIENTS["claude-desktop"].files(platform)
    assert paths[0] == tmp_path.joinpath(
        "local",
        "Packages",
        "Claude_pzs8sxrjxfjjc",
        "LocalCache",
        "Roaming",
        "Claude",
        "claude_desktop_config.json",
    )
    _run(platform, "install", "claude-desktop", "notion")
    for path in paths:
        assert json.loads(path.read_text())["mcpServers"]["notion"] == {
            "command": "C:\\Tools\\mcp-bridge.exe",
            "args": ["run", "notion"],
        }
    _run(platform, "uninstall", "claude-desktop", "notion")
    assert [json.loads(path.read_text()) for path in paths] == [{"mcpServers": {}}] * 2


@pytest.mark.parametrize(
    ("client", "system", "where"),
    [
        ("claude-desktop", "darwin", "home/Library/Application Support/Claude"),
        ("claude-desktop", "linux", "home/.config/Claude"),
        ("claude-code", "win32", "home"),
        ("cursor", "darwin", "home/.cursor"),
        ("vscode", "darwin", "home/Library/Application Support/Code/User"),
        ("vscode", "win32", "roaming/Code/User"),
        ("vscode", "linux", "home/.config/Code/User"),
        ("windsurf", "win32", "home/.codeium/windsurf"),
        ("zed", "darwin", "home/.config/zed"),
        ("zed", "linux", "home/.config/zed"),
        ("zed", "win32", "roaming/Zed"),
    ],
)
def test_where_each_client_keeps_its_servers(
    tmp_path: Path, client: str, system: System, where: str
) -> None:
    (path,) = CLIENTS[client].files(_platform(tmp_path, system))
    assert path.parent == tmp_path / where


def test_xdg_config_home_moves_the_linux_files(tmp_path: Path) -> None:
    platform = Platform("linux", tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "xdg")})
    assert CLIENTS["zed"].files(platform) == [tmp_path / "xdg" / "zed" / "settings.json"]
    relative = Platform("linux", tmp_path, {"XDG_CONFIG_HOME": "xdg"})  # ignored, as XDG says
    assert CLIENTS["vscode"].files(relative) == [tmp_path / ".config/Code/User/mcp.json"]


def test_an_entry_that_runs_something_else_is_replaced_or_removed_only_with_force(
    tmp_path: Path,
) -> None:
    platform = _platform(tmp_path, "linux")
    (path,) = CLIENTS["cursor"].files(platform)
    path.parent.mkdir(parents=True)
    path.write_text('{"mcpServers": {"notion": {"url": "https://mcp.notion.com/mcp"}}}')
    for action in ("install", "uninstall"):
        with pytest.raises(ConfigError, match="does not run mcp-bridge"):
            _run(platform, action, "cursor", "notion")
    _run(platform, "install", "cursor", "notion", "--force")
    assert "url" not in json.loads(path.read_text())["mcpServers"]["notion"]
    _run(platform, "uninstall", "cursor", "notion")
    assert json.loads(path.read_text()) == {"mcpServers": {}}


def test_a_moved_bridge_is_updated_and_keys_the_user_added_stay(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    platform = _platform(tmp_path, "linux")
    (path,) = CLIENTS["zed"].files(platform)
    path.parent.mkdir(parents=True)
    old = {"command": {"path": "/old/mcp-bridge", "args": ["run", "n"]}, "env": {"A": "1"}}
    path.write_text(json.dumps({"context_servers": {"n": old}}, indent=2))
    _run(platform, "install", "zed", "n")
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("-") and "/old/mcp-bridge" in line for line in out)
    assert json.loads(path.read_text())["context_servers"]["n"] == {
        "command": "/usr/lib/mcp bridge/bin/mcp-bridge",
        "env": {"A": "1"},
        "args": ["run", "n"],
    }


def test_a_symlinked_config_stays_a_link(tmp_path: Path) -> None:
    platform = _platform(tmp_path, "linux")
    (path,) = CLIENTS["windsurf"].files(platform)
    path.parent.mkdir(parents=True)
    real = tmp_path / "dotfiles" / "mcp_config.json"
    real.parent.mkdir()
    real.write_text("{}")
    path.symlink_to(real)
    _run(platform, "install", "windsurf", "n")
    assert path.is_symlink()
    assert "n" in json.loads(real.read_text())["mcpServers"]


def test_a_file_the_client_rewrote_meanwhile_is_not_overwritten(tmp_path: Path) -> None:
    path = tmp_path / ".claude.json"
    path.write_text("{}")
    change = config_file.plan_install(path, CLIENTS["claude-code"], "n", {"a": 1}, force=False)
    path.write_text('{"numStartups": 8}')
    with pytest.raises(BridgeError, match="changed while"):
        config_file.write(change)
    assert path.read_text() == '{"numStartups": 8}'


def test_windows_commands_avoid_what_cmd_exe_splits() -> None:
    def short(path: str) -> str:
        return {"C:\\Program Files\\mb\\mcp-bridge.exe": "C:\\PROGRA~1\\mb\\MCP-BR~1.EXE"}.get(
            path, path
        )

    command = ["C:\\Program Files\\mb\\mcp-bridge.exe"]
    assert clients.check_windows_command(command, "notion", short) == [
        "C:\\PROGRA~1\\mb\\MCP-BR~1.EXE"
    ]
    with pytest.raises(ConfigError, match="Install mcp-bridge under a path"):
        clients.check_windows_command(["C:\\Users\\A B\\mcp-bridge.exe"], "notion", short)
    with pytest.raises(ConfigError, match="mcp-bridge add NAME URL"):
        clients.check_windows_command(["C:\\mb.exe"], "https://x/?a=1&b=2", short)


def test_bad_servers_and_names_are_refused(tmp_path: Path) -> None:
    platform = _platform(tmp_path, "linux")
    for server in ("-x", "two words", "", "a/b"):
        with pytest.raises(ConfigError, match="is not a server name"):
            _run(platform, "install", "cursor", "--as", "ok", "--", server)
    with pytest.raises(ConfigError, match="cannot be handed"):
        _run(platform, "install", "cursor", "--as", "ok", "https://a b")
    for entry in ("-x", ".x", "a b", "é"):
        with pytest.raises(ConfigError, match="--as NAME"):
            _run(platform, "install", "cursor", "ok", f"--as={entry}")
    with pytest.raises(ConfigError, match="--as NAME"):
        _run(platform, "install", "cursor", "https://[::1]:8080/mcp")
    assert not (tmp_path / "home").exists()


def test_the_cli_installs_this_bridge_by_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("MCP_BRIDGE_HOME", str(tmp_path / "bridge"))
    assert run_cli(["install", "claude-code", URL]) == 0
    entry = json.loads((tmp_path / ".claude.json").read_text())["mcpServers"]["mcp.example.com"]
    assert os.path.isabs(entry["command"])
    assert entry["args"][-2:] == ["run", URL]
    assert entry["type"] == "stdio"
    assert "MCP_BRIDGE_HOME is set here" in capsys.readouterr().out
    assert run_cli(["uninstall", "claude-code", URL]) == 0

    assert run_cli(["install", "claude-code", "notion"]) == 0
    assert "has no server named 'notion' yet" in capsys.readouterr().out
    assert run_cli(["add", "notion", "https://mcp.notion.com/mcp"]) == 0
    capsys.readouterr()
    assert run_cli(["install", "claude-code", "notion"]) == 0
    out = capsys.readouterr().out
    assert "already installed" in out
    assert "has no server" not in out

    (tmp_path / ".claude.json").write_text("{")
    assert run_cli(["install", "claude-code", URL]) == 2
    assert "is not JSON" in capsys.readouterr().err


def test_the_cli_lists_every_client() -> None:
    assert tuple(CLIENTS) == install_command.CLIENT_NAMES
