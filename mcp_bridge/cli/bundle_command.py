"""`mcp-bridge bundle URL|NAME -o NAME.mcpb`: a Claude Desktop extension (an MCP Bundle,
installed by double-click) that runs this bridge for one server.

NAME is a server of servers.toml: its URL and flags are written into the bundle, which is
self-contained. `run`'s server flags are taken here too and passed on (--header,
--transport, the OAuth flags). A header's credential must be a `${VAR}` reference: the host
asks for VAR at install time and keeps it in the OS keychain; a literal secret is refused,
so that no bundle carries one. The bundle's layout: mcp_bridge/bundle/.
"""

from __future__ import annotations

import argparse
import re
from typing import TYPE_CHECKING

from mcp_bridge.cli.server_flags import add_server_arguments, defer_defaults
from mcp_bridge.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path

    from mcp_bridge.bundle.manifest import BundleSpec

# bundle/manifest.py's MANIFEST_VERSIONS (a test keeps them equal): spelled out here so that
# `--help` imports nothing more.
MANIFEST_VERSIONS = ("0.4", "0.3")
# A name that is also a valid Python project name and a file name on every platform.
_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]{0,62}[A-Za-z0-9])?")


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "bundle",
        help="write a Claude Desktop extension (.mcpb) that runs this bridge for a server",
        description="Write an MCP Bundle (.mcpb) that runs `mcp-bridge run` for one server; "
        "Claude Desktop installs it by double-click. It carries this mcp-bridge as a wheel "
        "and no secret: header credentials are ${VAR} references the app asks for.",
    )
    parser.add_argument(
        "url",
        metavar="URL|NAME",
        help="the remote MCP endpoint, or the name of a server added with `mcp-bridge add` "
        "(its stored flags go into the bundle; flags given here win)",
    )
    parser.add_argument(
        "-o", "--output", metavar="FILE", help="the file to write (default: NAME.mcpb here)"
    )
    parser.add_argument(
        "--name",
        help="the extension's name in the app (default: the server's name, or the URL's host)",
    )
    parser.add_argument(
        "--manifest-version",
        choices=MANIFEST_VERSIONS,
        default=MANIFEST_VERSIONS[0],
        help="0.4 (default): Claude Desktop runs the bundle with its own uv; 0.3: for apps "
        "without the uv runtime, which then need `uv` on their PATH",
    )
    add_server_arguments(parser)
    defer_defaults(parser)
    parser.set_defaults(handler=bundle_command)


def bundle_command(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from mcp_bridge.atomic_file import write_atomically
    from mcp_bridge.bundle.archive import zip_bytes
    from mcp_bridge.cli.server_flags import resolve_server

    resolve_server(args, os.environ)  # a NAME becomes its URL and stored flags
    name = extension_name(args.name or getattr(args, "server_name", None), args.url)
    output = Path(args.output or f"{name}.mcpb")
    spec, files = bundle_files(args, name, output)
    data = zip_bytes(files)
    try:
        write_atomically(output, data)  # a double-click never meets half a file
    except OSError as exc:
        raise ConfigError(
            f"Cannot write {output}: {exc.strerror}",
            next_step="Choose a writable place with -o FILE",
        ) from None
    print(f"wrote {output} ({len(data) // 1024} KiB): mcp-bridge {spec.version} for {spec.url}")
    print("Install it: double-click it, or drag it onto Claude Desktop's Settings > Extensions.")
    if spec.secrets:
        asked = ", ".join(spec.secrets)
        print(f"The app asks for {asked} there and keeps it in the OS keychain.")
    if spec.manifest_version == "0.3":
        print("Manifest 0.3: the app runs `uv` from its PATH; install uv first.")
    return 0


def extension_name(chosen: str | None, url: str) -> str:
    """--name, or the server's name, or the URL's host; ConfigError for one that cannot
    name a file and a Python project."""
    from urllib.parse import urlsplit

    name = chosen or urlsplit(url).hostname or ""
    if not _NAME.fullmatch(name):
        raise ConfigError(
            f"{name!r} cannot name an extension (letters, digits, '.', '_' and '-', at most "
            "64, starting and ending with a letter or digit)",
            next_step="Choose one with --name NAME",
        )
    return name


def bundle_files(
    args: argparse.Namespace, name: str, output: Path
) -> tuple[BundleSpec, dict[str, bytes]]:
    """The bundle's files for the resolved `args`; ConfigError (or UrlRefused) for a flag
    that `run` would refuse, or a secret that would end up in the bundle."""
    from mcp_bridge.auth.urlpolicy import UrlPolicy
    from mcp_bridge.bundle import manifest
    from mcp_bridge.bundle.wheel import build_wheel
    from mcp_bridge.cli.run import parse_headers
    from mcp_bridge.server_config import FLAG_FIELDS, refuse_secrets

    UrlPolicy.for_server(args.url, allow_http=args.allow_http)
    if args.client_secret:
        raise ConfigError(
            "--client-secret would be written into the bundle, and a bundle holds no secrets",
            next_step="Leave it out: a bundle signs in as a public client (PKCE). For a server "
            "that needs a client secret, configure the client by hand, with "
            'MCP_BRIDGE_CLIENT_SECRET in its "env"',
        )
    headers: list[str] = args.header
    secrets = manifest.secret_variables(headers)
    parse_headers(headers, dict.fromkeys(secrets, "x"))  # `run`'s checks, with stand-in values
    try:
        refuse_secrets({"url": args.url, "header": headers}, output)
    except ConfigError as exc:
        raise ConfigError(
            exc.what,
            next_step="Write the credential as a ${VAR} reference, e.g. --header "
            "'Authorization: Bearer ${API_TOKEN}': the app asks for API_TOKEN at install time "
            "and keeps it in the OS keychain",
        ) from None
    values = {dest: getattr(args, dest) for dest in FLAG_FIELDS}
    wheel = build_wheel()
    spec = manifest.BundleSpec(
        name=name,
        label=name,
        url=args.url,
        run_flags=manifest.run_flags(values, getattr(args, "flag_defaults", {})),
        secrets=secrets,
        version=wheel.version,
        requires_python=wheel.requires_python,
        wheel=wheel.filename,
        license=wheel.license,
        manifest_version=args.manifest_version,
    )
    files = {
        "manifest.json": manifest.manifest_json(spec),
        "pyproject.toml": manifest.pyproject_toml(spec).encode("utf-8"),
        manifest.ENTRY_POINT: manifest.ENTRY_SCRIPT.encode("utf-8"),
        f"{manifest.WHEEL_DIR}/{wheel.filename}": wheel.data,
    }
    return spec, files
