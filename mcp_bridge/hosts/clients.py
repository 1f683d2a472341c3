"""The desktop MCP clients `mcp-bridge install` knows: which file each keeps its MCP
servers in (a function of the OS, the environment and the home directory, which the caller
passes, so that tests can ask for any OS), under which key, and the entry it wants for a
stdio server. docs/desktop-hosts.md ("Where each client keeps its MCP servers") says where
these facts come from. Knows nothing of editing text or writing files.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import Literal

from mcp_bridge.errors import ConfigError
from mcp_bridge.server_config import is_name

System = Literal["linux", "darwin", "win32"]

# Claude Desktop's MSIX package (the Windows installer's default since February 2026): the
# app reads a virtualised copy of %APPDATA% inside it, and ignores edits to the plain one.
CLAUDE_MSIX_PACKAGE = "Claude_pzs8sxrjxfjjc"
CLAUDE_DESKTOP_FILE = "claude_desktop_config.json"
# What cmd.exe splits at or expands in a word it is handed unquoted.
CMD_EXE_SPECIAL = frozenset(' \t&|<>^%!"()')


@dataclass(frozen=True, slots=True)
class Platform:
    system: System
    home: Path
    env: Mapping[str, str]

    @classmethod
    def current(cls) -> Platform:
        system: System = "linux"
        if sys.platform in ("win32", "cygwin"):
            system = "win32"
        elif sys.platform == "darwin":
            system = "darwin"
        return cls(system, Path.home(), os.environ)

    def config_home(self) -> Path:
        """$XDG_CONFIG_HOME, where the XDG spec allows it (absolute), else ~/.config."""
        value = self.env.get("XDG_CONFIG_HOME", "")
        return Path(value) if os.path.isabs(value) else self.home / ".config"

    def appdata(self) -> Path:
        """Windows' roaming application data, %APPDATA%."""
        value = self.env.get("APPDATA", "")
        return Path(value) if value else self.home / "AppData" / "Roaming"

    def local_appdata(self) -> Path:
        """Windows' local application data, %LOCALAPPDATA%."""
        value = self.env.get("LOCALAPPDATA", "")
        return Path(value) if value else self.home / "AppData" / "Local"


@dataclass(frozen=True, slots=True)
class Client:
    name: str  # as typed on the command line
    title: str
    key: str  # the object in the file that holds the servers
    lenient: bool  # the client reads comments and trailing commas
    typed: bool  # its entries say "type": "stdio"
    reload_hint: str
    files: Callable[[Platform], list[Path]]

    def entry(self, command: list[str], server: str) -> dict[str, object]:
        """The entry that runs `command run SERVER` as a stdio server."""
        head: dict[str, object] = {"type": "stdio"} if self.typed else {}
        return {**head, "command": command[0], "args": [*command[1:], "run", server]}


def _claude_desktop(platform: Platform) -> list[Path]:
    if platform.system == "darwin":
        return [platform.home / "Library" / "Application Support" / "Claude" / CLAUDE_DESKTOP_FILE]
    if platform.system == "linux":  # the community builds: Electron's usual place
        return [platform.config_home() / "Claude" / CLAUDE_DESKTOP_FILE]
    plain = platform.appdata() / "Claude" / CLAUDE_DESKTOP_FILE
    package = platform.local_appdata() / "Packages" / CLAUDE_MSIX_PACKAGE
    if not package.is_dir():
        return [plain]
    # Both: the MSIX build reads the first; the plain one serves a later classic install.
    return [package / "LocalCache" / "Roaming" / "Claude" / CLAUDE_DESKTOP_FILE, plain]


def _vscode(platform: Platform) -> list[Path]:
    if platform.system == "darwin":
        base = platform.home / "Library" / "Application Support"
    elif platform.system == "win32":
        base = platform.appdata()
    else:
        base = platform.config_home()
    return [base / "Code" / "User" / "mcp.json"]


def _zed(platform: Platform) -> list[Path]:
    if platform.system == "win32":
        return [platform.appdata() / "Zed" / "settings.json"]
    if platform.system == "darwin":
        return [platform.home / ".config" / "zed" / "settings.json"]
    return [platform.config_home() / "zed" / "settings.json"]


CLIENTS = {
    client.name: client
    for client in (
        Client(
            "claude-desktop",
            "Claude Desktop",
            "mcpServers",
            lenient=False,
            typed=False,
            reload_hint="Quit Claude Desktop fully and start it again to load the change.",
            files=_claude_desktop,
        ),
        Client(
            "claude-code",
            "Claude Code",
            "mcpServers",
            lenient=False,
            typed=True,
            reload_hint="New Claude Code sessions see the change (`claude mcp list`).",
            files=lambda platform: [platform.home / ".claude.json"],
        ),
        Client(
            "cursor",
            "Cursor",
            "mcpServers",
            lenient=False,
            typed=False,
            reload_hint="Cursor lists it under Settings > MCP; restart Cursor if it does not.",
            files=lambda platform: [platform.home / ".cursor" / "mcp.json"],
        ),
        Client(
            "vscode",
            "VS Code",
            "servers",
            lenient=True,
            typed=True,
            reload_hint="VS Code starts it when a chat first needs it (`MCP: List Servers`).",
            files=_vscode,
        ),
        Client(
            "windsurf",
            "Windsurf",
            "mcpServers",
            lenient=False,
            typed=False,
            reload_hint="Refresh the MCP servers in Windsurf's Cascade panel, or restart it.",
            files=lambda platform: [platform.home / ".codeium" / "windsurf" / "mcp_config.json"],
        ),
        Client(
            "zed",
            "Zed",
            "context_servers",
            lenient=True,
            typed=False,
            reload_hint="Zed reads settings.json again by itself.",
            files=_zed,
        ),
    )
}


def entry_name(server: str, chosen: str | None) -> str:
    """The name of the client's entry: `chosen` (--as), or the server's name, or, for a
    URL, its host name. The rule is the one for server names (servers.toml)."""
    name = chosen
    if name is None:
        from urllib.parse import urlsplit

        name = (urlsplit(server).hostname or "") if "://" in server else server
    if not is_name(name):
        raise ConfigError(
            f"{name!r} cannot name a client's entry (up to 64 letters, digits, '_', '.' and "
            "'-', starting with a letter, digit or '_')",
            next_step="Choose one with --as NAME",
        )
    return name


def is_bridge_entry(value: object) -> bool:
    """Whether an existing entry runs mcp-bridge (its script, or `python -m mcp_bridge`);
    Zed's older form has `command: {path, args}`."""
    if not isinstance(value, dict):
        return False
    command, args = value.get("command"), value.get("args")
    if isinstance(command, dict):  # Zed's older form
        args = command.get("args")
        command = command.get("path")
    if not isinstance(command, str) or not isinstance(args, list) or "run" not in args:
        return False
    program = PurePath(command.replace("\\", "/")).name.lower()
    return program.startswith("mcp-bridge") or "mcp_bridge" in args


def check_windows_command(
    command: list[str], server: str, short_path: Callable[[str], str]
) -> list[str]:
    """`command` as Windows hosts can run it: they hand it to cmd.exe, which splits a path
    at a space (`C:\\Program Files\\...`) and treats `&`, `%`, `^`... as its own. A path with
    a space is replaced by its 8.3 short form where the volume has one; whatever is still
    unsafe is refused, with the way round it."""
    safe = [short_path(word) if " " in word else word for word in command]
    for word in safe:
        if CMD_EXE_SPECIAL & set(word):
            raise ConfigError(
                f"Windows clients run their servers through cmd.exe, which would split or "
                f"expand {word!r} (spaces, & % ^ ! and the like); this volume has no short "
                "8.3 name for it",
                next_step="Install mcp-bridge under a path without them, e.g. "
                "`pipx install mcp-bridge` for a user whose name has no space",
            )
    if CMD_EXE_SPECIAL & set(server):
        raise ConfigError(
            f"Windows clients run their servers through cmd.exe, which would split or expand "
            f"{server!r} (spaces, & % ^ ! and the like)",
            next_step="Give it a plain name first: `mcp-bridge add NAME URL`, then "
            "`mcp-bridge install CLIENT NAME`",
        )
    return safe


def windows_short_path(path: str) -> str:
    """The 8.3 short form of an existing path (Windows only), or `path` unchanged."""
    if sys.platform != "win32":
        return path
    import ctypes

    size = 1024
    buffer = ctypes.create_unicode_buffer(size)
    got = ctypes.windll.kernel32.GetShortPathNameW(path, buffer, size)
    return buffer.value if 0 < got < size else path
