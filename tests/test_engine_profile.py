"""ServerProfile: the JSON a shim hands the daemon, checked once at the edge."""

from __future__ import annotations

import argparse

import pytest

from mcp_bridge.auth.loopback import CallbackHost
from mcp_bridge.cli.app import build_parser
from mcp_bridge.cli.run import profile_json
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.errors import ConfigError
from mcp_bridge.protocol import TransportKind


def run_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_flags_survive_the_json_round_trip() -> None:
    args = run_args(
        "https://mcp.example/mcp",
        "--transport",
        "sse",
        "--header",
        "X-Team: ${TEAM}",
        "--client-id",
        "abc",
        "--scope",
        "read write",
        "--authorize-param",
        "prompt=consent",
        "--callback-host",
        "localhost",
        "--max-message-bytes",
        "4096",
        "--use-id-token",
        "--no-resource",
    )
    doc = profile_json(args, {"TEAM": "blue", "MCP_BRIDGE_CLIENT_SECRET": "s3cret"})
    profile = ServerProfile.from_json(doc)
    assert profile.url == "https://mcp.example/mcp"
    assert profile.resource == "https://mcp.example/mcp"
    assert profile.transport is TransportKind.SSE
    assert dict(profile.headers) == {"X-Team": "blue"}
    assert profile.max_message_bytes == 4096
    assert profile.oauth is not None
    assert profile.oauth.client_id == "abc"
    assert profile.oauth.client_secret == "s3cret"  # from the environment, not argv
    assert profile.oauth.scopes == ("read", "write")
    assert profile.oauth.authorize_params == (("prompt", "consent"),)
    assert profile.oauth.callback_host is CallbackHost.LOCALHOST
    assert profile.oauth.use_id_token
    assert not profile.oauth.send_resource
    assert "s3cret" not in repr(profile)
    assert "blue" not in repr(profile)


def test_a_static_authorization_header_turns_oauth_off() -> None:
    args = run_args("https://mcp.example/mcp", "--header", "Authorization: Bearer ${T}")
    profile = ServerProfile.from_json(profile_json(args, {"T": "static"}))
    assert profile.oauth is None


@pytest.mark.parametrize(
    ("doc", "complaint"),
    [
        ([], "not a JSON object"),
        ({}, "no URL"),
        ({"url": "ftp://mcp.example/"}, "scheme .ftp."),
        ({"url": "http://mcp.example/mcp"}, "http"),
        ({"url": "https://mcp.example/", "transport": "pigeon"}, "Unknown transport"),
        ({"url": "https://mcp.example/", "headers": {"A": 1}}, "headers"),
        ({"url": "https://mcp.example/", "max_message_bytes": True}, "too small"),
        ({"url": "https://mcp.example/", "oauth": []}, "OAuth settings"),
        ({"url": "https://mcp.example/", "oauth": {"scope": "a"}}, "--scope"),
        ({"url": "https://mcp.example/", "oauth": {"callback_port": 70000}}, "port"),
        ({"url": "https://mcp.example/", "oauth": {"callback_port": "80"}}, "number"),
        ({"url": "https://mcp.example/", "oauth": {"callback_host": "0.0.0.0"}}, "callback"),
        ({"url": "https://mcp.example/", "oauth": {"client_secret": "s"}}, "without --client-id"),
        ({"url": "https://mcp.example/", "oauth": {"login_timeout": 0}}, "positive"),
    ],
)
def test_a_malformed_profile_is_a_config_error(doc: object, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        ServerProfile.from_json(doc)


def test_plain_http_off_loopback_needs_allow_http() -> None:
    profile = ServerProfile.from_json({"url": "http://mcp.example/mcp", "allow_http": True})
    assert profile.allow_http
    assert ServerProfile.from_json({"url": "http://127.0.0.1:9/mcp"}).url.startswith("http:")
