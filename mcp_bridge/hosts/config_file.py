"""One client config file changed by one entry: planned (the new text, nothing written),
shown as a unified diff, then written with a backup of the original, through a temporary
file and a rename (store/atomic_file.py), keeping the file's mode; a symlink's target is
what gets written, so that a link into a dotfiles repository stays a link.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mcp_bridge.atomic_file import write_atomically
from mcp_bridge.errors import BridgeError, ConfigError
from mcp_bridge.hosts.clients import Client, is_bridge_entry
from mcp_bridge.hosts.json_edit import drop_entry, entry, put_entry
from mcp_bridge.hosts.jsonc import JsoncError, parse

BACKUP_SUFFIX = ".bak-mcp-bridge"
NEW_FILE = "{}\n"
NEW_FILE_MODE = 0o600  # entries may carry secrets in their env
DIFF_CONTEXT_LINES = 1  # neighbours may carry secrets too: show as little of them as will do
DIFF_LINE_MAX = 160  # a minified file is one line: do not print all of it


@dataclass(frozen=True, slots=True)
class Change:
    path: Path  # as the client names it
    target: Path  # what is written: the path, or the file a symlink there points to
    before: str | None  # None: there is no file yet
    after: str
    had_entry: bool

    @property
    def changes(self) -> bool:
        return self.before != self.after


def plan_install(path: Path, client: Client, name: str, entry: object, *, force: bool) -> Change:
    """The file with `entry` as `name`. An existing mcp-bridge entry keeps its other keys
    (`env`, `disabled`...); an entry that runs something else is replaced only with `force`."""
    target, before = _read(path)
    text = before if before is not None and before.strip() else NEW_FILE
    had, current = _current(path, client, text, name)
    if had and not is_bridge_entry(current) and not force:
        raise ConfigError(
            f"{path} already has a server {name!r} that does not run mcp-bridge",
            next_step="Choose another name with --as NAME, or replace it with --force",
        )
    wanted = entry
    if had and isinstance(current, dict) and isinstance(entry, dict) and is_bridge_entry(current):
        wanted = {**current, **entry}
    if had and current == wanted:
        return Change(path, target, before, before or "", had_entry=True)
    after = _edit(path, lambda: put_entry(text, client.key, name, wanted, lenient=client.lenient))
    return Change(path, target, before, after, had_entry=had)


def plan_uninstall(path: Path, client: Client, name: str, *, force: bool) -> Change:
    """The file without `name` (the same text when it has none)."""
    target, before = _read(path)
    if before is None or not before.strip():
        return Change(path, target, before, before or "", had_entry=False)
    had, current = _current(path, client, before, name)
    if had and not is_bridge_entry(current) and not force:
        raise ConfigError(
            f"The server {name!r} in {path} does not run mcp-bridge",
            next_step="Remove it in the client, or with --force",
        )
    after = _edit(path, lambda: drop_entry(before, client.key, name, lenient=client.lenient))
    return Change(path, target, before, after, had_entry=had)


def _current(path: Path, client: Client, text: str, name: str) -> tuple[bool, object]:
    kind = "JSON with comments" if client.lenient else "JSON"
    try:
        return entry(parse(text, lenient=client.lenient), client.key, name)
    except JsoncError as exc:
        raise ConfigError(
            f"{path} is not {kind} that mcp-bridge can edit: {exc}",
            next_step=f"Fix it ({client.title} cannot read it either), then run this again; "
            "it was left as it is",
        ) from exc


def _edit(path: Path, make: Callable[[], str]) -> str:
    try:
        text = make()
    except JsoncError as exc:  # the check after the edit failed: a bug, never written
        raise BridgeError(
            f"mcp-bridge could not edit {path} safely ({exc}); it was left as it is",
            next_step="Please report this, with the file's layout (not its secrets)",
        ) from exc
    return text


def diff(change: Change) -> str:
    """The change as a unified diff, with long lines cut."""
    import difflib

    lines = difflib.unified_diff(
        (change.before or "").splitlines(keepends=True),
        change.after.splitlines(keepends=True),
        fromfile=str(change.path) if change.before is not None else "/dev/null",
        tofile=str(change.path),
        n=DIFF_CONTEXT_LINES,
    )
    out = []
    for line in lines:
        line = line.rstrip("\r\n")
        if len(line) > DIFF_LINE_MAX:
            line = f"{line[:DIFF_LINE_MAX]}… ({len(line) - DIFF_LINE_MAX} more characters)"
        out.append(line)
    return "\n".join(out)


def write(change: Change) -> Path | None:
    """Write `change.after`: the original copied to a backup first (returned), then the new
    text through a temporary file and a rename, in the original's mode. Refused, and nothing
    written, when the file changed since it was read (the client app writes it too)."""
    target = change.target
    if _read(change.path)[1] != change.before:
        raise BridgeError(
            f"{change.path} changed while mcp-bridge was editing it; it was left as it is",
            next_step="Run the command again",
        )
    try:
        mode = NEW_FILE_MODE
        backup = None
        if change.before is not None:
            mode = target.stat().st_mode & 0o7777
            backup = _backup(target, change.before.encode("utf-8"), mode)
        write_atomically(target, change.after.encode("utf-8"))
        os.chmod(target, mode)
    except OSError as exc:
        raise BridgeError(f"Cannot write {target}: {exc}", next_step="Check its folder") from exc
    return backup


def _backup(target: Path, data: bytes, mode: int) -> Path:
    """A copy of the original next to it, in its mode, named after the time: a new name
    each change, so that the first original is never overwritten."""
    import time

    stamp = time.strftime("%Y%m%d-%H%M%S")
    for number in range(100):
        suffix = f"{BACKUP_SUFFIX}-{stamp}" + (f"-{number}" if number else "")
        backup = target.with_name(target.name + suffix)
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            handle = os.open(backup, flags, 0o600)
        except FileExistsError:
            continue
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.chmod(backup, mode)
        return backup
    raise OSError(f"too many backups of {target} this second")


def _read(path: Path) -> tuple[Path, str | None]:
    """The file to write (a symlink's target, so that a dotfiles link stays a link) and
    its text, or None when there is none."""
    target = Path(os.path.realpath(path))
    try:
        data = target.read_bytes()
    except FileNotFoundError:
        return target, None
    except OSError as exc:
        raise BridgeError(f"Cannot read {path}: {exc}", next_step="Check its permissions") from exc
    try:
        return target, data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path} is not UTF-8 text ({exc})",
            next_step="Save it as UTF-8, then run this again; it was left as it is",
        ) from exc
