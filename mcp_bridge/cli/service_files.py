"""What the daemon's service files say: the command that runs this install of mcp-bridge,
and the systemd units and launchd agent rendered from the templates shipped in the package
(service_templates/). `service install` writes them; `install` writes the same command into
a desktop client's config."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mcp_bridge.errors import BridgeError, ConfigError

__all__ = [
    "LAUNCHD_LABEL",
    "SERVICE_UNIT",
    "SOCKET_UNIT",
    "daemon_command",
    "render_plist",
    "render_service_unit",
    "template_text",
]

SOCKET_UNIT = "mcp-bridge.socket"
SERVICE_UNIT = "mcp-bridge.service"
LAUNCHD_LABEL = "dev.mcp-bridge.daemon"
EXECUTABLE = "@EXECUTABLE@"
LOG_DIR = "@LOG_DIR@"


def template_text(kind: str, name: str) -> str:
    """A template shipped in the package: service_templates/<kind>/<name>."""
    from importlib import resources

    return (resources.files("mcp_bridge") / "service_templates" / kind / name).read_text(
        encoding="utf-8"
    )


def daemon_command() -> list[str]:
    """The absolute command that runs this install of mcp-bridge: its `mcp-bridge` script,
    or, where there is none (run from a checkout), this Python with `-m mcp_bridge`."""
    if not sys.executable:
        raise BridgeError(
            "Cannot tell which Python runs mcp-bridge",
            next_step="Run `service install` with the installed `mcp-bridge` command",
        )
    # absolute(), not resolve(): a venv's python is a symlink out of the venv, and the venv
    # is what has mcp-bridge installed.
    python = Path(sys.executable).absolute()
    script = python.with_name("mcp-bridge.exe" if sys.platform == "win32" else "mcp-bridge")
    if script.is_file() and os.access(script, os.X_OK):
        return [str(script)]
    return [str(python), "-m", "mcp_bridge"]


def render_service_unit(command: list[str]) -> str:
    words = [_systemd_word(word, program=index == 0) for index, word in enumerate(command)]
    return template_text("systemd", SERVICE_UNIT).replace(EXECUTABLE, " ".join(words))


def _systemd_word(word: str, *, program: bool) -> str:
    """One ExecStart word: systemd expands `%` specifiers everywhere and `$` variables in
    the arguments (not in the program's path), and splits on blanks unless quoted."""
    if any(char in "\"'\\" or ord(char) < 32 or ord(char) == 127 for char in word):
        # systemd refuses these in an executable's name, and quoting does not help.
        raise ConfigError(
            f"systemd cannot run a command with {word!r} in it (quotes, backslashes or "
            "control characters)",
            next_step="Install mcp-bridge under a plainer path, e.g. with `pipx install .`",
        )
    word = word.replace("%", "%%") if program else word.replace("%", "%%").replace("$", "$$")
    return f'"{word}"' if any(char.isspace() or char == ";" for char in word) else word


def render_plist(command: list[str], log_dir: Path) -> str:
    """The launchd agent: ProgramArguments gets the command's words where the template has
    @EXECUTABLE@; plistlib does the XML escaping a text substitution would get wrong."""
    import plistlib

    plist = plistlib.loads(template_text("launchd", f"{LAUNCHD_LABEL}.plist").encode())
    plist["ProgramArguments"] = [
        word
        for arg in plist["ProgramArguments"]
        for word in (command if arg == EXECUTABLE else [arg])
    ]
    for key in ("StandardOutPath", "StandardErrorPath"):
        plist[key] = plist[key].replace(LOG_DIR, str(log_dir))
    return plistlib.dumps(plist, sort_keys=False).decode()
