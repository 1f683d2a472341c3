"""`mcp-bridge add NAME URL [flags]`, `remove NAME` and `list`: the named servers of
servers.toml, so a client's config says `mcp-bridge run NAME` and the flags live in one
place. `add` stores the flags given, unexpanded (`${VAR}` stays a reference), after
checking them as `run` would; it refuses to store a credential.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from mcp_bridge import server_config
from mcp_bridge.cli.oauth_flags import CLIENT_SECRET_ENV, IDP_CLIENT_SECRET_ENV
from mcp_bridge.cli.server_flags import add_server_arguments, defer_defaults
from mcp_bridge.errors import ConfigError
from mcp_bridge.paths import bridge_paths


def register(commands: Any) -> None:  # argparse's subparsers action has no public type
    add = commands.add_parser(
        "add",
        help="name a remote server and its flags, for `run NAME` (servers.toml)",
        description="Store a remote MCP server under a name in servers.toml (config dir), "
        "with the `run` flags given here, so `mcp-bridge run NAME`, `login NAME`, "
        "`logout NAME` and `token NAME` use them. Flags given to those commands win over "
        "the stored ones. No secrets are stored: a credential header is written as "
        "${VAR}, expanded from the environment the client launches `run` with.",
    )
    add.add_argument("name", help="letters, digits, '_', '.' and '-', e.g. github")
    add.add_argument("url", help="the remote MCP endpoint, e.g. https://mcp.example.com/mcp")
    add.add_argument("--force", action="store_true", help="replace a server of the same name")
    add_server_arguments(add)
    defer_defaults(add)
    add.set_defaults(handler=add_command)

    remove = commands.add_parser(
        "remove",
        help="forget a named server (its login stays; `logout` forgets that)",
        description="Remove a named server from servers.toml. Its tokens stay in the vault.",
    )
    remove.add_argument("name", help="the name given to `mcp-bridge add`")
    remove.set_defaults(handler=remove_command)

    listing = commands.add_parser(
        "list",
        help="the named servers: name, URL, transport",
        description="List the named servers of servers.toml (no header values).",
    )
    listing.set_defaults(handler=list_command)


def _say(text: str) -> None:
    sys.stderr.write(f"mcp-bridge: {text}\n")
    sys.stderr.flush()


def add_command(args: argparse.Namespace) -> int:
    name = server_config.check_name(args.name)
    if args.client_secret:
        raise ConfigError(
            "`add` does not store a client secret",
            next_step=f"Run `mcp-bridge login {name}` once with {CLIENT_SECRET_ENV} set (the "
            f"vault keeps the secret), or set {CLIENT_SECRET_ENV} in the environment the "
            f'client launches `mcp-bridge run {name}` with (its "env" setting)',
        )
    if server_config.is_name(args.url):
        raise ConfigError(
            f"{args.url!r} is not a URL", next_step="Give the server's https:// address"
        )
    path = bridge_paths().servers_file
    entry: server_config.Entry = {"url": args.url}
    for dest in server_config.FLAG_FIELDS:
        value = getattr(args, dest)
        if value is not None and value != []:  # only what was given: the file stays short
            entry[dest] = value
    server_config.refuse_secrets(entry, path)
    _check_like_run(args, entry)
    servers = server_config.load_servers(path)
    replacing = name in servers
    if replacing and not args.force:
        raise ConfigError(
            f"There is a server named {name!r} in {path} already",
            next_step="Pass --force to replace it, or choose another name",
        )
    servers[name] = entry
    server_config.save_servers(path, servers)
    _say(
        f"{'replaced' if replacing else 'added'} {name} ({args.url}) in {path}; "
        f"a client can now launch `mcp-bridge run {name}`"
    )
    return 0


def _check_like_run(args: argparse.Namespace, entry: server_config.Entry) -> None:
    """Refuse now what `run NAME` would refuse later (a bad URL, header or OAuth flag), in
    the terminal rather than in a desktop client's log. `${VAR}` references are checked
    for form only: their values live in the client's environment, not this one."""
    from mcp_bridge.cli.run import profile_json
    from mcp_bridge.engine.profile import DEFAULT_MAX_MESSAGE_BYTES, ServerProfile

    headers = entry.get("header", [])
    assert isinstance(headers, list)
    stand_ins = {
        variable: "x" for spec in headers for variable in server_config.ENV_REFERENCE.findall(spec)
    }
    # Like a ${VAR}, the identity provider's secret is the launching client's to set.
    stand_ins[IDP_CLIENT_SECRET_ENV] = "x"
    check = argparse.Namespace(**vars(args), max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES)
    ServerProfile.from_json(profile_json(check, stand_ins))
    if args.client_key_file is not None or args.idp_client_key_file is not None:
        from mcp_bridge.auth.machine_login import read_signing_key

        if args.client_key_file is not None:
            read_signing_key(args.client_key_file, flag="--client-key-file")
        if args.idp_client_key_file is not None:
            read_signing_key(args.idp_client_key_file, flag="--idp-client-key-file")


def remove_command(args: argparse.Namespace) -> int:
    name = args.name
    path = bridge_paths().servers_file
    servers = server_config.load_servers(path)
    entry = servers.pop(name, None)
    if entry is None:
        raise ConfigError(
            f"No server named {name!r} in {path}", next_step="`mcp-bridge list` shows the names"
        )
    server_config.save_servers(path, servers)
    _say(
        f"removed {name} from {path}; a login to it stays in the vault "
        f"(`mcp-bridge logout {entry['url']}` forgets it)"
    )
    return 0


def list_command(args: argparse.Namespace) -> int:
    path = bridge_paths().servers_file
    servers = server_config.load_servers(path)
    if not servers:
        _say(f"no named servers in {path}; add one with `mcp-bridge add NAME URL`")
        return 0
    rows = [("NAME", "URL", "TRANSPORT")]
    rows += [(name, str(e["url"]), str(e.get("transport", "auto"))) for name, e in servers.items()]
    widths = [max(len(row[column]) for row in rows) for column in range(2)]
    for name, url, transport in rows:
        sys.stdout.write(f"{name:<{widths[0]}}  {url:<{widths[1]}}  {transport}\n")
    sys.stdout.flush()
    return 0
