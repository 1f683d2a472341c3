"""`mcp-bridge login | token | logout` against the fixture AS, in-process through their
argparse parsers (the subcommands as registered by cli/auth_commands.py), with a key-file
vault under MCP_BRIDGE_HOME and the redirect follower as the browser; and the OAuth flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from mcp_bridge.auth.errors import LoginRequired
from mcp_bridge.auth.loopback import CallbackHost
from mcp_bridge.auth.settings import OAuthSettings
from mcp_bridge.cli import auth_commands
from mcp_bridge.errors import ConfigError
from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.oauth_client import use_follower


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="mcp-bridge")
    auth_commands.register(root.add_subparsers(dest="command", required=True))
    return root


def run(*argv: str) -> int:
    args = parser().parse_args(list(argv))
    code: int = args.handler(args)
    return code


@pytest.fixture
def bridge_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MCP_BRIDGE_HOME", str(tmp_path))
    monkeypatch.setenv("MCP_BRIDGE_VAULT", "keyfile")
    return tmp_path


def test_login_then_token_then_logout(
    auth_server: AuthServerFactory,
    monkeypatch: pytest.MonkeyPatch,
    bridge_home: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = auth_server()
    use_follower(monkeypatch)

    assert run("login", server.mcp_url, "--login-timeout", "120") == 0
    said = capsys.readouterr()
    assert said.out == ""  # login prints nothing on stdout
    assert f"logged in to {server.mcp_url}" in said.err
    assert "with a refresh token" in said.err
    # The URL is shown even when a browser opened: it may not be the one to sign in with.
    assert f"sign in to {server.mcp_url} in the browser window just opened" in said.err
    assert f"\n{server.issuer}" in said.err

    assert run("token", server.mcp_url) == 0
    token = capsys.readouterr().out.strip()
    assert len(token) > 20
    assert token not in said.err
    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"]) == (1, 1)

    assert run("login", server.mcp_url, "--login-timeout", "120") == 0  # again: same client
    capsys.readouterr()
    assert server.stats()["registrations"] == 1

    assert run("logout", server.mcp_url) == 0
    assert "revoked at the authorization server" in capsys.readouterr().err
    assert server.stats()["revocations"] == 1
    with pytest.raises(LoginRequired, match=f"mcp-bridge login {server.mcp_url}"):
        run("token", server.mcp_url)
    assert run("logout", server.mcp_url) == 0  # nothing left: says so, succeeds
    assert "nothing to do" in capsys.readouterr().err


def settings(*argv: str, env: dict[str, str] | None = None) -> OAuthSettings:
    args = parser().parse_args(["login", "https://mcp.example/mcp", *argv])
    return auth_commands.oauth_settings_from(args, env or {})


def test_oauth_flags_become_settings() -> None:
    parsed = settings(
        "--client-id",
        "abc",
        "--scope",
        "read write",
        "--scope",
        "read admin",
        "--authorize-param",
        "prompt=consent",
        "--callback-port",
        "8765",
        "--callback-host",
        "localhost",
        "--no-browser",
        env={"MCP_BRIDGE_CLIENT_SECRET": "s3cret"},
    )
    assert parsed.client_id == "abc"
    assert parsed.client_secret == "s3cret"  # from the environment, not argv
    assert "s3cret" not in repr(parsed)
    assert parsed.scopes == ("read", "write", "admin")
    assert parsed.authorize_params == (("prompt", "consent"),)
    assert (parsed.callback_port, parsed.callback_host) == (8765, CallbackHost.LOCALHOST)
    assert parsed.open_browser is False
    pre = parsed.pre_registered()
    assert pre is not None
    assert pre.client_id == "abc"


@pytest.mark.parametrize(
    "argv",
    [
        ("--authorize-param", "novalue"),
        ("--callback-port", "70000"),
        ("--login-timeout", "0"),
        ("--client-secret", "x"),  # a secret without the client id it belongs to
    ],
)
def test_bad_oauth_flags_are_config_errors(argv: tuple[str, ...]) -> None:
    with pytest.raises(ConfigError) as refused:
        settings(*argv)
    assert refused.value.next_step or "must be positive" in refused.value.what
