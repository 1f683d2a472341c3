"""Named servers: servers.toml written by `mcp-bridge add`, read by `run NAME`, `login NAME`
and the rest; the file's checks, its atomic writes, and the secrets it refuses."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge import server_config
from mcp_bridge.auth.errors import LoginRequired
from mcp_bridge.cli.app import build_parser, run_cli
from mcp_bridge.cli.run import profile_json
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.errors import ConfigError
from mcp_bridge.protocol import TransportKind
from tests.fixtures.bridge_process import echo, running_bridge
from tests.fixtures.daemon_process import stop_daemon
from tests.fixtures.mcp_servers import ServerProcess, text_of

URL = "https://mcp.example.com/mcp"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MCP_BRIDGE_HOME", str(tmp_path))
    monkeypatch.setenv("MCP_BRIDGE_VAULT", "keyfile")
    return tmp_path


def servers_file(home: Path) -> Path:
    return home / "config" / "servers.toml"


# -- the file -----------------------------------------------------------------------------


def test_writes_are_atomic_and_owner_only(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = servers_file(home)
    server_config.save_servers(path, {"a": {"url": URL}})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    before = path.read_bytes()

    def crash(source: object, target: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(ConfigError, match="No space left"):
        server_config.save_servers(path, {"b": {"url": URL}})
    assert path.read_bytes() == before  # the old file, whole
    assert [p.name for p in path.parent.iterdir()] == ["servers.toml"]  # no temp file left


def test_a_symlinked_file_is_written_through(home: Path, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "servers.toml"
    real.parent.mkdir()
    real.write_text("")
    servers_file(home).parent.mkdir(parents=True)
    servers_file(home).symlink_to(real)
    server_config.save_servers(servers_file(home), {"a": {"url": URL}})
    assert servers_file(home).is_symlink()
    assert "[servers.a]" in real.read_text()


# -- a broken file ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ('[servers.a]\nurl = "x"\nurl = https://x\n', r"line 3, column 7 is not valid TOML"),
        ('[servers.a]\nurl = "https://x"\n\ncallback-port = 1\n', r"line 4: .*'callback_port'"),
        ('[servers.a]\nurl = "https://x"\nheaders = ["A: b"]\n', r"unknown key 'headers'"),
        ('[servers.a]\nurl = "x"\ncallback_port = "8765"\n', r"line 3: .*must be an integer"),
        ('[servers.a]\nurl = "x"\nheader = "A: b"\n', r"'header' must be a list of strings"),
        ('[servers.a]\nurl = "x"\nscope = ["a", 1]\n', r"'scope' must be a list of strings"),
        ('[servers.a]\nurl = "x"\ndevice = "yes"\n', r"'device' must be true or false, not a"),
        ('[servers.a]\nurl = "x"\nlogin_wait = true\n', r"'login_wait' must be a number"),
        ('[servers.a]\ntransport = "sse"\n', r"line 1: server 'a' has no url"),
        ('[servers."a b"]\nurl = "x"\n', r"'a b' is not a server name"),
        ('servers = "a"\n', r"'servers' is not a table"),
        ('[server.a]\nurl = "x"\n', r"line 1: unknown table or key 'server'"),
        ('[servers]\na = "x"\n', r"servers.a is not a table"),
    ],
)
def test_a_broken_file_is_a_config_error_with_the_place_and_the_fix(
    tmp_path: Path, text: str, complaint: str
) -> None:
    path = tmp_path / "servers.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=complaint) as refused:
        server_config.load_servers(path)
    assert str(path) in str(refused.value)
    assert refused.value.next_step


def test_numbers_may_be_written_as_integers_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "servers.toml"
    path.write_text('[servers.a]\nurl = "https://x"\nlogin_wait = 30\n')
    assert server_config.load_servers(path)["a"]["login_wait"] == 30.0


def test_given_flags_win_over_stored_ones_and_headers_add_up() -> None:
    stored: server_config.Entry = {
        "header": ["X-Team: blue", "X-Key: ${K}"],
        "scope": ["read"],
        "device": True,
    }
    given: dict[str, object] = {"header": ["x-team: red"], "scope": None, "device": None}
    given |= {"transport": None, "callback_port": 8765}
    defaults = {"transport": "auto", "callback_port": 0, "device": False}
    assert server_config.merge_flags(given, stored, defaults) == {
        "header": ["X-Key: ${K}", "x-team: red"],
        "scope": ["read"],
        "device": True,
        "transport": "auto",
        "callback_port": 8765,
    }


# -- the writer ---------------------------------------------------------------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ['"', "\\", "\n", "\r\n", "\t", "\x00", "\x7f", "'''", '"""', "${X}", "é ü 𝄞", "a.b", "[x]"]
)
VALUES = st.one_of(
    TEXT,
    st.lists(TEXT, max_size=4),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.booleans(),
    st.floats(allow_nan=False),
)


@given(st.dictionaries(TEXT, st.dictionaries(TEXT, VALUES, max_size=5), max_size=4))
def test_the_writer_output_parses_back_to_the_same_values(
    servers: dict[str, dict[str, server_config.Value]],
) -> None:
    assert tomllib.loads(server_config.dumps_servers(servers)).get("servers", {}) == servers


# -- run NAME, login NAME, token NAME -----------------------------------------------------


def stored_server(home: Path) -> None:
    entry: server_config.Entry = {
        "url": URL,
        "header": ["X-Api-Key: ${KEY}", "X-Team: blue"],
        "transport": "sse",
        "scope": ["read"],
        "callback_port": 8765,
        "no_browser": True,
        "use_id_token": True,
        "no_resource": True,
        "login_wait": 45.0,
    }
    server_config.save_servers(servers_file(home), {"gh": entry})


def test_run_name_takes_the_stored_flags_under_the_given_ones(home: Path) -> None:
    stored_server(home)
    args = build_parser(("run",)).parse_args(
        ["run", "gh", "--header", "x-team: red", "--scope", "admin", "--transport", "auto"]
    )
    env = {"MCP_BRIDGE_HOME": str(home), "KEY": "k3y"}
    profile = ServerProfile.from_json(profile_json(args, env))
    assert profile.url == URL
    assert args.server_name == "gh"
    assert profile.transport is TransportKind.AUTO  # given wins
    assert dict(profile.headers) == {"X-Api-Key": "k3y", "x-team": "red"}  # per name, any case
    assert profile.oauth is not None
    assert profile.oauth.scopes == ("admin",)  # a given list replaces the stored one
    assert profile.oauth.callback_port == 8765  # stored
    assert profile.oauth.open_browser is False  # stored
    assert profile.oauth.login_wait_s == 45.0  # stored
    assert profile.oauth.timeout_s == 300.0  # neither: the flag's default
    assert profile_json(args, env) == profile_json(args, env)  # resolving twice changes nothing


def test_run_url_ignores_the_file_and_keeps_the_flag_defaults(home: Path) -> None:
    stored_server(home)
    args = build_parser(("run",)).parse_args(["run", URL])
    doc = profile_json(args, {"MCP_BRIDGE_HOME": str(home)})
    assert (doc["transport"], doc["headers"]) == ("auto", {})
    assert isinstance(doc["oauth"], dict)
    assert (doc["oauth"]["callback_port"], doc["oauth"]["scope"]) == (0, [])


def test_an_unknown_name_says_how_to_add_it(home: Path) -> None:
    args = build_parser(("run",)).parse_args(["run", "nosuch"])
    with pytest.raises(ConfigError, match=r"No server named 'nosuch'.*mcp-bridge add nosuch"):
        profile_json(args, {"MCP_BRIDGE_HOME": str(home)})


def test_login_and_token_take_a_name(home: Path) -> None:
    from mcp_bridge.cli.auth_commands import oauth_settings_from

    stored_server(home)
    parser = build_parser()
    login = parser.parse_args(["login", "gh", "--callback-port", "9999"])
    settings = oauth_settings_from(login, {"MCP_BRIDGE_HOME": str(home)})
    assert login.url == URL
    assert settings.callback_port == 9999  # given wins
    assert (settings.scopes, settings.open_browser) == (("read",), False)  # stored

    token = parser.parse_args(["token", "gh"])
    with pytest.raises(LoginRequired, match=f"mcp-bridge login {URL}"):
        token.handler(token)


async def test_run_name_no_daemon_relays_to_the_stored_server(
    sdk_stateful: ServerProcess, bridge_home: Path
) -> None:
    entry: server_config.Entry = {"url": sdk_stateful.url, "header": ["X-Team: ${TEAM}"]}
    server_config.save_servers(servers_file(bridge_home), {"fixture": entry})
    async with running_bridge(bridge_home, "fixture", "--no-daemon", env={"TEAM": "t"}) as bridge:
        await bridge.initialize()
        assert text_of(await echo(bridge, "by name")) == "by name"
        assert await bridge.close_stdin_and_wait() == 0


def test_the_shim_resolves_a_name_without_heavy_libraries(home: Path) -> None:
    server_config.save_servers(servers_file(home), {"here": {"url": "http://127.0.0.1:9/mcp"}})
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "mcp_bridge", "run", "here"],
        input=b"",
        capture_output=True,
        env={"PATH": os.environ["PATH"], "HOME": str(home), "MCP_BRIDGE_HOME": str(home)},
        timeout=60,
        check=False,
    )
    stop_daemon(home)
    imported = {
        line.split("|")[-1].strip()
        for line in done.stderr.decode().splitlines()
        if line.startswith("import time:")
    }
    assert {"tomllib", "mcp_bridge.shim.relay"} <= imported  # it read the file, ran the shim
    heavy = {"aiohttp", "mcp", "keyring", "cryptography", "asyncio", "platformdirs"}
    assert not heavy & {name.split(".")[0] for name in imported}


# -- add, list, remove --------------------------------------------------------------------


def cli(*argv: str) -> int:
    return run_cli(list(argv))


def test_add_list_remove_round_trip(home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("add", "github", URL, "--header", "Authorization: Bearer ${GH_TOKEN}") == 0
    assert cli("add", "local.dev", "http://127.0.0.1:8000/mcp", "--transport", "sse") == 0
    assert "mcp-bridge run github" in capsys.readouterr().err

    assert cli("list") == 0
    listed = capsys.readouterr().out.splitlines()
    assert listed[0].split() == ["NAME", "URL", "TRANSPORT"]
    assert listed[1].split() == ["github", URL, "auto"]
    assert listed[2].split() == ["local.dev", "http://127.0.0.1:8000/mcp", "sse"]
    assert "GH_TOKEN" not in "\n".join(listed)  # headers are not listed

    assert cli("add", "github", "https://other.example/mcp") == 2  # a name is not replaced...
    assert "--force" in capsys.readouterr().err
    assert cli("add", "github", "https://other.example/mcp", "--force") == 0  # ...unless asked
    assert cli("remove", "local.dev") == 0
    assert "logout http://127.0.0.1:8000/mcp" in capsys.readouterr().err
    assert server_config.load_servers(servers_file(home)) == {
        "github": {"url": "https://other.example/mcp"}
    }
    assert cli("remove", "local.dev") == 2
    assert "mcp-bridge list" in capsys.readouterr().err


def test_the_file_is_plain_toml_a_person_can_read(home: Path) -> None:
    argv = ["add", "gh", URL, "--header", "X-Team: blue", "--scope", "read write"]
    argv += ["--callback-port", "8765", "--no-browser", "--login-wait", "45"]
    argv += ["--use-id-token", "--no-resource"]
    assert cli(*argv) == 0
    text = servers_file(home).read_text()
    assert text.startswith("# mcp-bridge's named servers")
    assert "\n[servers.gh]\n" in text
    assert 'header = ["X-Team: blue"]\n' in text
    assert tomllib.loads(text)["servers"]["gh"] == {
        "url": URL,
        "header": ["X-Team: blue"],
        "scope": ["read write"],
        "callback_port": 8765,
        "no_browser": True,
        "use_id_token": True,
        "no_resource": True,
        "login_wait": 45.0,
    }


# -- secrets stay out ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        "Authorization: Bearer abc123",
        "Authorization: Bearer ${TOKEN}abc",
        "authorization: ",
        "X-Api-Key: abc123",
        "X-Api-Key: Bearer ${KEY}",  # only Authorization headers name a scheme
        "Cookie: session=${SID}",
        "X-Auth-Token: t0k3n",
        "Client-Secret: s",
    ],
)
def test_a_literal_credential_is_not_stored(
    header: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("add", "a", URL, "--header", header) == 2
    said = capsys.readouterr().err
    assert "${" in said  # the fix: a reference
    assert "abc123" not in said
    assert not servers_file(home).exists()


@pytest.mark.parametrize(
    "header",
    [
        "Authorization: Bearer ${TOKEN}",
        "Authorization: ${AUTH}",
        "Proxy-Authorization: Basic ${B64}",
        "X-Api-Key: ${KEY}",
        "Cookie: ${A}${B}",
        "X-Team: blue",
    ],
)
def test_references_and_plain_values_are_stored(header: str, home: Path) -> None:
    assert cli("add", "a", URL, "--header", header) == 0
    assert server_config.load_servers(servers_file(home))["a"]["header"] == [header]


def test_a_client_secret_is_refused_with_the_variable_to_set(
    home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli("add", "a", URL, "--client-id", "abc", "--client-secret", "s3cret") == 2
    said = capsys.readouterr().err
    assert "MCP_BRIDGE_CLIENT_SECRET" in said
    assert "s3cret" not in said
    assert cli("add", "b", "https://user:pw@mcp.example.com/mcp") == 2
    assert "password" in capsys.readouterr().err
    assert not servers_file(home).exists()


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["add", "-", URL], "is not a server name"),
        (["add", URL, "a"], "the name comes first"),
        (["add", "a", "b"], "is not a URL"),
        (["add", "a", "http://mcp.example.com/mcp"], "--allow-http"),
        (["add", "a", URL, "--callback-port", "70000"], "port number"),
        (["add", "a", URL, "--header", "Mcp-Session-Id: x"], "MCP protocol itself"),
    ],
)
def test_add_refuses_now_what_run_would_refuse_later(
    argv: list[str], complaint: str, home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli(*argv) == 2
    assert complaint in capsys.readouterr().err
    assert not servers_file(home).exists()
