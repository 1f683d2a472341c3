"""Named servers: servers.toml written by `mcp-bridge add`, read by `run NAME`, `login NAME`
and the rest; the file's checks, its atomic writes, and the secrets it refuses."""

from __future__ import annotations

import os
import stat
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge import server_config
from mcp_bridge.errors import ConfigError

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
