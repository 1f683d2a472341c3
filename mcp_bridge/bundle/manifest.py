"""What a bundle says: its manifest.json (MCPB manifest 0.4 with `server.type` "uv", or 0.3
with "python"), its pyproject.toml and its entry point. Pure functions, no I/O.

How the bundle runs (both manifest versions): `uv run --directory <bundle> server/main.py
run URL FLAGS...`. uv makes a virtual environment in the bundle's directory from its
pyproject.toml, which depends on mcp-bridge at exactly the version of the wheel shipped in
`wheels/` (a `tool.uv.sources` path, relative, so nothing of the building machine leaks in),
and fetches the bridge's own dependencies (aiohttp, cryptography, mcp, ...) for the user's
platform. With "uv" (0.4) Claude Desktop runs its own copy of uv with these arguments; with
"python" (0.3) the host runs `uv` from its PATH.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import NamedTuple

from mcp_bridge.errors import ConfigError
from mcp_bridge.server_config import ENV_REFERENCE

# The manifest versions `bundle` writes; the first is the default.
MANIFEST_VERSIONS = ("0.4", "0.3")
ENTRY_POINT = "server/main.py"
WHEEL_DIR = "wheels"
URL_KEY = "server_url"
PLATFORMS = ["darwin", "linux", "win32"]
# What the host itself replaces in mcp_config (`${HOME}` ...): a header's variable by one of
# these names would reach the bridge already replaced, so none may name a secret.
HOST_VARIABLES = frozenset(
    {"__dirname", "pathSeparator", "HOME", "DESKTOP", "DOCUMENTS", "DOWNLOADS"}
)

ENTRY_SCRIPT = '''\
"""The entry point of an mcp-bridge bundle: `mcp-bridge` with the arguments the host passes
(`run URL --header ...`, from the bundle's manifest.json). uv runs it in the environment it
made from pyproject.toml, where the bundled mcp-bridge wheel is installed."""

import sys

from mcp_bridge.cli import main

sys.exit(main(sys.argv[1:]))
'''


class BundleSpec(NamedTuple):
    """Everything a bundle is made from."""

    name: str  # machine-readable: the manifest's name and the bundle project's name
    label: str  # what the user sees: the manifest's display_name
    url: str  # the server's URL: the default of the `server_url` setting
    run_flags: list[str]  # `run`'s flags after the URL, `${VAR}` references kept
    secrets: dict[str, list[str]]  # each variable the headers use -> the headers using it
    version: str  # mcp-bridge's version, which is also the bundle's
    requires_python: str  # mcp-bridge's Requires-Python
    wheel: str  # the file name of the wheel in wheels/
    license: str | None = None
    manifest_version: str = MANIFEST_VERSIONS[0]


def run_flags(values: Mapping[str, object], defaults: Mapping[str, object]) -> list[str]:
    """`run`'s flags for `values` (by argparse dest), those at their default left out. Each is
    one `--flag=value` word, so that a value starting with '-' stays a value."""
    flags: list[str] = []
    for dest, value in values.items():
        if value is None or value is False or value == [] or value == defaults.get(dest):
            continue
        flag = "--" + dest.replace("_", "-")
        if value is True:
            flags.append(flag)
        elif isinstance(value, list):
            flags.extend(f"{flag}={item}" for item in value)
        else:
            flags.append(f"{flag}={value}")
    return flags


def secret_variables(headers: list[str]) -> dict[str, list[str]]:
    """The `${VAR}` references of the headers' values, in order: each becomes a sensitive
    setting the host asks for. ConfigError for a name the host would replace itself."""
    found: dict[str, list[str]] = {}
    for spec in headers:
        name, _, value = spec.partition(":")
        for variable in ENV_REFERENCE.findall(value):
            if variable in HOST_VARIABLES or variable == URL_KEY:
                raise ConfigError(
                    f"--header {name.strip()!r} uses ${{{variable}}}, a name the host fills "
                    "in by itself",
                    next_step="Use another variable name, e.g. ${SERVER_TOKEN}",
                )
            users = found.setdefault(variable, [])
            if name.strip() not in users:
                users.append(name.strip())
    return found


def uv_args(spec: BundleSpec) -> list[str]:
    """The arguments to `uv`: run the entry point in the bundle's project environment."""
    return [
        "run",
        "--directory",
        "${__dirname}",
        "--quiet",  # uv's progress would reach the host's log as errors
        ENTRY_POINT,
        "run",
        f"${{user_config.{URL_KEY}}}",
        *spec.run_flags,
    ]


def manifest(spec: BundleSpec) -> dict[str, object]:
    """The bundle's manifest.json document."""
    uv = spec.manifest_version != "0.3"
    settings: dict[str, object] = {
        URL_KEY: {
            "type": "string",
            "title": "Server URL",
            "description": "The remote MCP server's URL (https://...).",
            "default": spec.url,
            "required": False,
        }
    }
    for variable, headers in spec.secrets.items():
        settings[variable] = {
            "type": "string",
            "title": variable,
            "description": f"The credential for the {', '.join(headers)} header "
            f"(written there as ${{{variable}}}). Kept in the OS keychain.",
            "sensitive": True,
            "required": True,
        }
    mcp_config: dict[str, object] = {"command": "uv", "args": uv_args(spec)}
    if spec.secrets:
        mcp_config["env"] = {name: f"${{user_config.{name}}}" for name in spec.secrets}
    compatibility: dict[str, object] = {"platforms": PLATFORMS}
    if not uv:
        compatibility["runtimes"] = {"python": spec.requires_python}
    document: dict[str, object] = {
        "manifest_version": spec.manifest_version,
        "name": spec.name,
        "display_name": spec.label,
        "version": spec.version,
        "description": f"The MCP server at {spec.url}, through mcp-bridge: OAuth sign-in in "
        "your browser, tokens in the OS keyring.",
        "long_description": _long_description(spec, uv=uv),
        "author": {"name": "mcp-bridge"},
        "server": {
            "type": "uv" if uv else "python",
            "entry_point": ENTRY_POINT,
            "mcp_config": mcp_config,
        },
        "tools_generated": True,  # the remote server's tools, known only at run time
        "prompts_generated": True,
        "keywords": ["mcp-bridge", "remote", "oauth"],
        "compatibility": compatibility,
        "user_config": settings,
    }
    if spec.license:
        document["license"] = spec.license
    return document


def manifest_json(spec: BundleSpec) -> bytes:
    return (json.dumps(manifest(spec), indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _long_description(spec: BundleSpec, *, uv: bool) -> str:
    runner = (
        "Claude Desktop's own uv"
        if uv
        else "`uv` (install it first; the app must find it on its PATH)"
    )
    return (
        f"Runs mcp-bridge {spec.version} (shipped inside this bundle) for {spec.url}. "
        f"On its first start {runner} installs Python {spec.requires_python} if needed and "
        "mcp-bridge's dependencies: that takes a minute, once, and needs the internet. "
        "When the server asks for a sign-in, the bridge opens your browser; tokens are kept "
        "in the OS keyring and shared with every other mcp-bridge of this user."
    )


def pyproject_toml(spec: BundleSpec) -> str:
    """The bundle's pyproject.toml: a project that is never built itself (`package =
    false`), depending on the wheel in wheels/ only."""
    wheel = f"{WHEEL_DIR}/{spec.wheel}"
    return (
        "# Made by `mcp-bridge bundle`: uv installs the mcp-bridge wheel shipped beside this\n"
        "# file (never a package of that name from an index) and the wheel's dependencies.\n"
        "[project]\n"
        f"name = {_toml_string(f'mcp-bridge-bundle-{spec.name}')}\n"
        f"version = {_toml_string(spec.version)}\n"
        f"requires-python = {_toml_string(spec.requires_python)}\n"
        f"dependencies = [{_toml_string(f'mcp-bridge=={spec.version}')}]\n"
        "\n"
        "[tool.uv]\n"
        "package = false\n"
        "\n"
        "[tool.uv.sources]\n"
        f"mcp-bridge = {{ path = {_toml_string(wheel)} }}\n"
    )


def _toml_string(text: str) -> str:
    # A JSON string without \u escapes of non-ASCII is a TOML basic string.
    return json.dumps(text, ensure_ascii=False)
