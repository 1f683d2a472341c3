"""`mcp-bridge install CLIENT SERVER` and `mcp-bridge uninstall CLIENT SERVER`: an entry in a
desktop client's MCP config that runs this bridge by its absolute path (`... run SERVER`,
SERVER passed on as given: a URL, or a name `run` resolves), or that entry removed.

Only that one entry changes: the file is edited as text (mcp_bridge/hosts), so other
servers, comments and formatting survive byte for byte. Each change prints its diff and
keeps a backup of the original; `--dry-run` prints the diff and writes nothing; a second
run changes nothing. Which file each client reads: mcp_bridge/hosts/clients.py.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

# Not a startup cost: cli.app has imported it already.
from mcp_bridge.errors import BridgeError, ConfigError

if TYPE_CHECKING:
    from mcp_bridge.hosts.clients import Platform
    from mcp_bridge.hosts.config_file import Change

# The names hosts/clients.py knows (a test keeps the two equal): spelled out here so that
# `--help` imports nothing more.
CLIENT_NAMES = ("claude-desktop", "claude-code", "cursor", "vscode", "windsurf", "zed")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    for action, help_text in (
        ("install", "add this bridge for a server to a desktop client's MCP config"),
        ("uninstall", "remove the entry `install` made from a desktop client's MCP config"),
    ):
        parser = commands.add_parser(
            action,
            help=help_text,
            description=f"{help_text[0].upper()}{help_text[1:]}. Only that entry changes; "
            "the diff is printed and the original is backed up next to the file.",
        )
        parser.add_argument(
            "client",
            choices=CLIENT_NAMES,
            metavar="CLIENT",
            help="one of: " + ", ".join(CLIENT_NAMES),
        )
        parser.add_argument(
            "server",
            metavar="SERVER",
            help="a server's name or its URL, handed to `mcp-bridge run` as given",
        )
        parser.add_argument(
            "--as",
            dest="entry",
            metavar="NAME",
            help="the entry's name in the client (default: SERVER, or a URL's host name)",
        )
        parser.add_argument("--dry-run", action="store_true", help="print the diff; write nothing")
        parser.add_argument(
            "--force",
            action="store_true",
            help="replace or remove an entry of that name that does not run mcp-bridge",
        )
        parser.set_defaults(handler=install_command)


def install_command(args: argparse.Namespace) -> int:
    from mcp_bridge.hosts.clients import Platform

    platform = Platform.current()
    if args.command == "uninstall":
        return carry_out(args, platform, [])
    from mcp_bridge.cli.service_files import daemon_command

    code = carry_out(args, platform, daemon_command())
    _note_what_run_will_not_find(args.server)
    return code


def carry_out(args: argparse.Namespace, platform: Platform, command: list[str]) -> int:
    """Install (with `command`, the absolute command line of this mcp-bridge) or uninstall
    per `args`, for the client's files on `platform`. Every file is planned before any is
    written: one that cannot be edited stops them all."""
    from mcp_bridge.hosts import clients, config_file

    client = clients.CLIENTS[args.client]
    server: str = args.server
    if args.command == "install":
        _check_server(server)
    name = clients.entry_name(server, args.entry)
    paths = client.files(platform)
    if args.command == "uninstall":
        changes = [
            config_file.plan_uninstall(path, client, name, force=args.force) for path in paths
        ]
    else:
        if platform.system == "win32":
            short_path = clients.windows_short_path
            command = clients.check_windows_command(command, server, short_path)
        entry = client.entry(command, server)
        changes = [
            config_file.plan_install(path, client, name, entry, force=args.force) for path in paths
        ]
    for change in changes:
        _report(change, name, client.title, dry_run=args.dry_run)
    if any(change.changes for change in changes) and not args.dry_run:
        print(client.reload_hint)
    return 0


def _report(change: Change, name: str, title: str, *, dry_run: bool) -> None:
    from mcp_bridge.hosts import config_file

    if not change.changes:
        if change.had_entry:
            print(f"{change.path}: {name!r} is already installed; nothing changed.")
        else:
            print(f"{change.path}: no server {name!r}; nothing to remove.")
        return
    print(config_file.diff(change))
    where = change.target  # the file a symlink points to, when the path is one
    if dry_run:
        print(f"would write {where} (--dry-run: nothing was written)")
        return
    if not change.target.parent.is_dir():
        print(f"note: {change.target.parent} did not exist (is {title} installed?); made it")
    backup = config_file.write(change)
    print(f"wrote {where}" + (f" (the original is in {backup.name})" if backup else ""))


def _check_server(server: str) -> None:
    if "://" not in server:
        from mcp_bridge.server_config import check_name

        check_name(server)  # what `run` takes for a name
    elif server.startswith("-") or any(char.isspace() for char in server):
        raise ConfigError(
            f"{server!r} cannot be handed to `mcp-bridge run` as a URL (a space in it, or a "
            "'-' first)",
            next_step="Check the URL, or name it first: `mcp-bridge add NAME URL`",
        )


def _note_what_run_will_not_find(server: str) -> None:
    """Notes, not errors (the entry is right; what it needs can come later): a name that
    servers.toml does not have yet, and an MCP_BRIDGE_HOME the client will not pass on."""
    import os

    from mcp_bridge import server_config
    from mcp_bridge.paths import HOME_ENV, bridge_paths

    if os.environ.get(HOME_ENV):
        print(
            f"note: {HOME_ENV} is set here, and the client will not pass it on: add it to "
            'the entry\'s "env" if the bridge it starts should use it'
        )
    if "://" in server:
        return
    path = bridge_paths().servers_file
    try:
        known = server in server_config.load_servers(path)
    except BridgeError as exc:
        print(f"note: `mcp-bridge run {server}` will fail until this is fixed: {exc}")
        return
    if not known:
        print(
            f"note: {path} has no server named {server!r} yet: add it with "
            f"`mcp-bridge add {server} URL` before the client starts it"
        )
