"""`mcp-bridge bundle`: the .mcpb archive validates against the official MCPB manifest
schemas (0.4 and 0.3, JSON Schema draft-07, vendored under tests/fixtures/mcpb/ with their
MIT license, from modelcontextprotocol/mcpb at 27083dcf93c4d1c589af6b539ec746e50d6068e7);
it holds no secret and nothing of the building machine; the command line the host would
start (after its own `${...}` substitution) is `mcp-bridge run URL` with the headers
expanding to the user's secret, and it relays MCP for real. And the wheel inside installs.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import re
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from mcp_bridge.bundle import manifest as bundle_manifest
from mcp_bridge.bundle import wheel as bundle_wheel
from mcp_bridge.cli import bundle_command
from mcp_bridge.cli.app import EXIT_OK, EXIT_USAGE, build_parser, run_cli
from mcp_bridge.cli.run import profile_json
from mcp_bridge.server_config import Entry, save_servers
from tests.fixtures.bridge_process import BridgeProcess, echo
from tests.fixtures.daemon_process import stop_daemon
from tests.fixtures.mcp_servers import ServerProcess

REPO = Path(__file__).resolve().parents[1]
SCHEMAS = REPO / "tests" / "fixtures" / "mcpb"
URL = "https://mcp.example.com/mcp"
SECRET = "s3cret-VALUE-that-must-stay-out"
AUTH = "Authorization: Bearer ${EXAMPLE_TOKEN}"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """MCP_BRIDGE_HOME for servers.toml; the secret set in the builder's environment (it
    must not travel); the working directory for the default output file."""
    home = tmp_path / "bridge-home"
    home.mkdir()
    monkeypatch.setenv("MCP_BRIDGE_HOME", str(home))
    monkeypatch.setenv("EXAMPLE_TOKEN", SECRET)
    monkeypatch.chdir(tmp_path)
    return home


def build(tmp_path: Path, *argv: str) -> dict[str, bytes]:
    """Run `mcp-bridge bundle ARGV -o tmp/out.mcpb`; the archive's files by name."""
    output = tmp_path / "out.mcpb"
    assert run_cli(["bundle", *argv, "-o", str(output)]) == EXIT_OK
    with zipfile.ZipFile(output) as archive:
        assert archive.testzip() is None
        return {name: archive.read(name) for name in archive.namelist()}


def manifest_of(files: dict[str, bytes]) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(files["manifest.json"])
    return document


def all_bytes(files: dict[str, bytes]) -> Iterator[tuple[str, bytes]]:
    """Every file of the archive, and every file of the zips (the wheel) inside it."""
    for name, data in files.items():
        yield name, data
        if name.endswith(".whl"):
            with zipfile.ZipFile(io.BytesIO(data)) as inner:
                for member in inner.namelist():
                    yield f"{name}!{member}", inner.read(member)


def host_config(document: dict[str, Any], values: dict[str, Any], dirname: str) -> Any:
    """What an MCPB host makes of mcp_config (the rules of MANIFEST.md): the user's values
    over the defaults; an argument that is exactly `${user_config.KEY}` becomes the value,
    and `${__dirname}`, `${HOME}` and `${user_config.KEY}` are replaced inside strings. No
    other `${...}` is touched."""
    settings = document.get("user_config", {})
    merged = {key: spec["default"] for key, spec in settings.items() if "default" in spec}
    merged.update(values)
    variables = {"__dirname": dirname, "HOME": "/home/user"}
    variables |= {f"user_config.{key}": str(value) for key, value in merged.items()}

    def substitute(text: str) -> str:
        for name, value in variables.items():
            text = text.replace("${" + name + "}", value)
        return text

    config = document["server"]["mcp_config"]
    return {
        "command": config["command"],
        "args": [substitute(arg) for arg in config["args"]],
        "env": {key: substitute(value) for key, value in config.get("env", {}).items()},
    }


# -- the schema -------------------------------------------------------------------------


@pytest.mark.parametrize(("version", "server_type"), [("0.4", "uv"), ("0.3", "python")])
def test_the_manifest_validates_against_the_official_schema(
    home: Path, tmp_path: Path, version: str, server_type: str
) -> None:
    files = build(tmp_path, URL, "--header", AUTH, "--manifest-version", version)
    document = manifest_of(files)
    schema = json.loads((SCHEMAS / f"mcpb-manifest-v{version}.schema.json").read_text())
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    assert [error.message for error in validator.iter_errors(document)] == []
    assert document["manifest_version"] == version
    assert document["server"]["type"] == server_type
    # The files the manifest names are in the archive.
    assert document["server"]["entry_point"] in files
    assert set(files) == {
        "manifest.json",
        "pyproject.toml",
        "server/main.py",
        "wheels/mcp_bridge-0.1.0-py3-none-any.whl",
    }


def test_the_other_version_schema_refuses_it(home: Path, tmp_path: Path) -> None:
    """The two schemas differ where expected: `uv` exists only in 0.4."""
    document = manifest_of(build(tmp_path, URL))
    schema = json.loads((SCHEMAS / "mcpb-manifest-v0.3.schema.json").read_text())
    document["manifest_version"] = "0.3"
    errors = list(jsonschema.Draft7Validator(schema).iter_errors(document))
    assert [list(error.path) for error in errors] == [["server", "type"]]


def test_settings_ask_for_the_url_and_each_secret_as_sensitive(home: Path, tmp_path: Path) -> None:
    document = manifest_of(build(tmp_path, URL, "--header", AUTH, "--header", "X-Team: blue"))
    settings = document["user_config"]
    assert settings["server_url"]["default"] == URL
    assert settings["server_url"]["required"] is False  # the default serves
    assert settings["EXAMPLE_TOKEN"]["sensitive"] is True
    assert settings["EXAMPLE_TOKEN"]["required"] is True  # else the host would pass "${...}"
    assert "Authorization" in settings["EXAMPLE_TOKEN"]["description"]
    config = document["server"]["mcp_config"]
    assert config["env"] == {"EXAMPLE_TOKEN": "${user_config.EXAMPLE_TOKEN}"}
    assert f"--header={AUTH}" in config["args"]
    assert "--header=X-Team: blue" in config["args"]


# -- no secret, no path of the building machine ------------------------------------------


def test_no_secret_and_no_local_path_is_in_the_archive(home: Path, tmp_path: Path) -> None:
    files = build(tmp_path, URL, "--header", AUTH, "--scope", "read")
    local = [str(REPO), sys.prefix, str(tmp_path), str(Path.cwd())]
    for name, data in all_bytes(files):
        assert SECRET.encode() not in data, name
        for path in local:
            assert path.encode() not in data, (name, path)
    project = tomllib.loads(files["pyproject.toml"].decode())
    assert project["project"]["dependencies"] == ["mcp-bridge==0.1.0"]
    # Never the package of that name from an index: the wheel shipped beside the file.
    source = project["tool"]["uv"]["sources"]["mcp-bridge"]
    assert source == {"path": "wheels/mcp_bridge-0.1.0-py3-none-any.whl"}


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--header", "Authorization: Bearer abc123"], r"literal value.*\$\{API_TOKEN\}"),
        (["--header", "X-Api-Key: abc123"], "literal value"),
        (["--client-secret", "abc123"], "holds no secrets"),
        (["--header", "X-Home: ${HOME}"], "fills in by itself"),
        (["--header", "Accept: ${T}"], "set by the MCP protocol itself"),
        (["--name", "my server"], "cannot name an extension"),
    ],
)
def test_what_would_leak_or_not_run_is_refused_with_a_next_step(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    output = tmp_path / "out.mcpb"
    assert run_cli(["bundle", URL, *argv, "-o", str(output)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert re.search(expected, err), err
    assert "abc123" not in err
    assert not output.exists()


def test_a_url_with_a_password_is_refused(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_cli(["bundle", "https://me:pw@mcp.example.com/mcp", "-o", "x.mcpb"]) == EXIT_USAGE
    assert "password" in capsys.readouterr().err
    assert not (tmp_path / "x.mcpb").exists()


def test_an_unwritable_output_says_what_to_do(
    home: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "a-file").write_text("")
    assert run_cli(["bundle", URL, "-o", str(tmp_path / "a-file" / "x.mcpb")]) == EXIT_USAGE
    assert "Choose a writable place with -o FILE" in capsys.readouterr().err


def test_the_same_input_makes_the_same_bytes(home: Path, tmp_path: Path) -> None:
    assert build(tmp_path, URL, "--header", AUTH) == build(tmp_path, URL, "--header", AUTH)


# -- the command line the host starts -----------------------------------------------------


def test_the_host_command_is_run_with_the_url_and_the_secret_header(
    home: Path, tmp_path: Path
) -> None:
    argv = [URL, "--header", AUTH, "--header", "X-Team: blue", "--transport", "sse"]
    document = manifest_of(build(tmp_path, *argv, "--scope", "a b", "--login-wait", "12"))
    chosen = "https://other.example.com/v2/mcp"
    values = {"server_url": chosen, "EXAMPLE_TOKEN": SECRET}
    config = host_config(document, values, "/ext/dir with space")
    assert config["command"] == "uv"
    uv, rest = config["args"][:5], config["args"][5:]
    assert uv == ["run", "--directory", "/ext/dir with space", "--quiet", "server/main.py"]
    args = build_parser(("run",)).parse_args(rest)
    profile = profile_json(args, config["env"])
    assert profile["url"] == chosen
    assert profile["headers"] == {"Authorization": f"Bearer {SECRET}", "X-Team": "blue"}
    assert profile["transport"] == "sse"
    assert profile["oauth"] is None  # a static Authorization header: no OAuth
    assert (args.scope, args.login_wait) == (["a b"], 12.0)


def test_a_named_server_is_written_out_with_its_stored_flags(home: Path, tmp_path: Path) -> None:
    stored: Entry = {"url": URL, "header": [AUTH], "client_id": "cid", "scope": ["read"]}
    save_servers(home / "config" / "servers.toml", {"example": stored})
    assert run_cli(["bundle", "example", "--scope", "write"]) == EXIT_OK
    with zipfile.ZipFile(tmp_path / "example.mcpb") as archive:  # named after the server
        document = json.loads(archive.read("manifest.json"))
    assert document["name"] == "example"
    assert document["user_config"]["server_url"]["default"] == URL
    args = document["server"]["mcp_config"]["args"]
    assert args[5:] == [
        "run",
        "${user_config.server_url}",
        f"--header={AUTH}",
        "--client-id=cid",
        "--scope=write",  # given here: wins over the stored one
    ]


def test_flags_at_their_default_are_left_out() -> None:
    flags = bundle_manifest.run_flags(
        {"transport": "auto", "allow_http": False, "scope": [], "header": ["-x: y"]},
        {"transport": "auto"},
    )
    assert flags == ["--header=-x: y"]


async def test_the_bundled_entry_point_relays_for_real(
    tmp_path: Path, sdk_stateless: ServerProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The extracted bundle run as the host would (uv aside): its entry point, in its
    directory, with the substituted arguments, in a thin environment."""
    monkeypatch.setenv("MCP_BRIDGE_HOME", str(tmp_path / "builder"))
    output = tmp_path / "b.mcpb"
    assert run_cli(["bundle", sdk_stateless.url, "--header", AUTH, "-o", str(output)]) == 0
    extracted = tmp_path / "Claude Extensions" / "b"
    with zipfile.ZipFile(output) as archive:
        archive.extractall(extracted)
    document = json.loads((extracted / "manifest.json").read_text())
    config = host_config(document, {"EXAMPLE_TOKEN": SECRET}, str(extracted))
    home = tmp_path / "user-home"
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "MCP_BRIDGE_HOME": str(home)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *config["args"][4:],  # server/main.py run URL ...: what `uv run` starts
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=extracted,  # uv run --directory
        env=env | config["env"],
    )
    bridge = BridgeProcess(process)
    try:
        answer = await bridge.initialize()
        assert answer["result"]["serverInfo"]["name"] == "transport-peer"
        reply = await echo(bridge, "through the bundle")
        assert reply["result"]["content"][0]["text"] == "through the bundle"
    finally:
        process.kill()
        await process.wait()
        stop_daemon(home)


# -- the wheel inside ---------------------------------------------------------------------


def test_the_wheel_installs_with_pip_and_is_the_whole_package(tmp_path: Path) -> None:
    built = bundle_wheel.build_wheel()
    wheel = tmp_path / built.filename
    wheel.write_bytes(built.data)
    target = tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index"]
    subprocess.run([*pip, "--target", str(target), str(wheel)], check=True)
    shown = subprocess.run(
        [sys.executable, "-c", "import mcp_bridge.cli.bundle_command as m; print(m.__file__)"],
        env={**os.environ, "PYTHONPATH": str(target)},
        cwd=tmp_path,  # not the checkout, which `-c` would put first on sys.path
        capture_output=True,
        text=True,
        check=True,
    )
    assert shown.stdout.startswith(str(target))
    with zipfile.ZipFile(io.BytesIO(built.data)) as archive:
        names = set(archive.namelist())
    tracked = subprocess.run(
        ["git", "ls-files", "mcp_bridge"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    assert tracked, "not a git checkout"
    assert set(tracked) <= names  # everything the package ships (the wheel may have new files)
    assert not [name for name in names if "__pycache__" in name]


def test_the_spelled_out_lists_match_their_sources() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["mcp_bridge"]
    assert tuple(data) == bundle_wheel.PACKAGE_DATA
    assert bundle_command.MANIFEST_VERSIONS == bundle_manifest.MANIFEST_VERSIONS
