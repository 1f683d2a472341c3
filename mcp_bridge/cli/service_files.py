"""What the daemon's service files say: the command that runs this install of mcp-bridge,
and the systemd units, launchd agent and Task Scheduler task rendered from the templates
shipped in the package (service_templates/). `service install` writes them; `install`
writes the same command into a desktop client's config."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

from mcp_bridge.errors import BridgeError, ConfigError

__all__ = [
    "LAUNCHD_LABEL",
    "SERVICE_UNIT",
    "SOCKET_UNIT",
    "TASK_NAME",
    "daemon_command",
    "encode_task_xml",
    "render_plist",
    "render_service_unit",
    "render_task_xml",
    "template_text",
    "windowless_command",
    "windows_user",
]

SOCKET_UNIT = "mcp-bridge.socket"
SERVICE_UNIT = "mcp-bridge.service"
LAUNCHD_LABEL = "dev.mcp-bridge.daemon"
TASK_NAME = "mcp-bridge-daemon"
EXECUTABLE = "@EXECUTABLE@"
LOG_DIR = "@LOG_DIR@"
USER = "@USER@"
TASK_ARGUMENTS = "<Arguments>daemon</Arguments>"


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


def windowless_command(command: list[str]) -> list[str]:
    """`command` as Windows should start it at logon: by pythonw.exe (beside this
    python.exe, in every venv and python.org install), which opens no console. A console
    program that a logon task starts gets a console window, open for as long as the daemon
    runs. `command` itself where there is no pythonw.exe."""
    pythonw = Path(sys.executable).absolute().with_name("pythonw.exe") if sys.executable else None
    if pythonw is not None and pythonw.is_file():
        return [str(pythonw), "-m", "mcp_bridge"]
    return command


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


def windows_user(environ: Mapping[str, str] | None = None) -> str:
    """DOMAIN\\user for the task's logon trigger and principal: this user, whose own logon
    starts the daemon (a task for any user's logon needs an administrator)."""
    env = os.environ if environ is None else environ
    domain, name = env.get("USERDOMAIN", "").strip(), env.get("USERNAME", "").strip()
    if not domain or not name:
        raise ConfigError(
            "Cannot tell which Windows user the task is for: USERDOMAIN or USERNAME is not set",
            next_step="Run `mcp-bridge service install` from your own desktop session (a "
            "normal command prompt or PowerShell), where Windows sets both",
        )
    return f"{domain}\\{name}"


def render_task_xml(command: list[str], user: str) -> str:
    """The Task Scheduler task: Command is the program (quoted if it holds a space),
    Arguments the rest of the command and `daemon`, quoted the way Windows splits a command
    line (subprocess.list2cmdline).
    Both values are XML-escaped, and the declaration says UTF-16: `encode_task_xml`
    gives the bytes schtasks reads."""
    import subprocess
    from xml.sax.saxutils import escape

    for value in (*command, user):
        if not all(_xml_char(char) for char in value):
            raise ConfigError(
                f"Task Scheduler cannot run {value!r}: XML cannot carry a character in it",
                next_step="Install mcp-bridge under a plainer path, e.g. with `pipx install .`",
            )
    if '"' in command[0]:
        # No Windows path holds one, and Command could not carry it inside its quotes.
        raise ConfigError(
            f"Task Scheduler cannot run {command[0]!r}: a program path cannot hold a quote",
            next_step="Install mcp-bridge under a plainer path, e.g. with `pipx install .`",
        )
    for word in command:
        if "%" not in word:
            continue
        # Task Scheduler expands %NAME% in Command and Arguments, with no way to escape it.
        raise ConfigError(
            f"Task Scheduler cannot run {word!r}: it would read a % in it as the start of "
            "an environment variable",
            next_step="Install mcp-bridge under a path without %, e.g. with `pipx install .`",
        )
    template = template_text("windows", f"{TASK_NAME}.xml")
    if template.count(TASK_ARGUMENTS) != 1 or not template.startswith("<?xml "):
        raise AssertionError(f"the packaged task template lost its {TASK_ARGUMENTS} or declaration")
    arguments = escape(subprocess.list2cmdline([*command[1:], "daemon"]))
    body = template[template.index("?>") + 2 :]
    body = body.replace(TASK_ARGUMENTS, f"<Arguments>{arguments}</Arguments>")
    body = body.replace(EXECUTABLE, escape(_program_for_command(command[0])))
    body = body.replace(USER, escape(user))
    return '<?xml version="1.0" encoding="UTF-16"?>' + body


def _program_for_command(path: str) -> str:
    """The task's Command: the path, in double quotes when it holds a space (C:\\Program
    Files, a user name with a space), as the tasks Windows itself exports write it. Task
    Scheduler builds the process's command line from Command and Arguments, so an unquoted
    space would split the program's path."""
    return f'"{path}"' if any(char.isspace() for char in path) else path


def _xml_char(char: str) -> bool:
    """A character XML 1.0 allows (its Char production) and UTF-16 can encode, less the
    tab and newlines no Windows path holds: no control characters, no lone surrogates (a
    Windows file name can hold one)."""
    code = ord(char)
    return code >= 0x20 and not 0xD800 <= code <= 0xDFFF and code not in (0xFFFE, 0xFFFF)


def encode_task_xml(text: str) -> bytes:
    """UTF-16 little-endian with a byte order mark: what schtasks /XML reads (it refuses
    UTF-8, with or without a BOM; packaging/README.md says more)."""
    import codecs

    return codecs.BOM_UTF16_LE + text.encode("utf-16-le")
