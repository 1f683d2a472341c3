"""`--grant` and its flags: what each grant needs and refuses (OAuthSettings.from_flags),
file paths made absolute at the CLI edge, the identity provider's secret read from the
environment only, and the flags travelling shim -> daemon in the profile."""

from __future__ import annotations

import argparse
import os

import pytest

from mcp_bridge.auth.settings import Grant, OAuthSettings
from mcp_bridge.cli.oauth_flags import add_oauth_arguments, oauth_flags
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.errors import ConfigError

ENTERPRISE = {
    "grant": "enterprise",
    "client_id": "desktop",
    "idp_issuer": "https://idp.example.com",
    "idp_client_id": "desktop",
    "idp_client_secret": "s",
    "id_token_file": "/run/user/1/id-token",
}


def parsed(*argv: str, environ: dict[str, str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser()
    add_oauth_arguments(parser)
    return oauth_flags(parser.parse_args(list(argv)), environ or {})


def test_the_default_grant_is_the_browser_login() -> None:
    settings = OAuthSettings.from_flags(parsed())
    assert settings.grant is Grant.AUTHORIZATION_CODE
    assert not settings.grant.is_machine


def test_file_flags_become_absolute_and_the_idp_secret_comes_from_the_environment() -> None:
    flags = parsed(
        "--grant",
        "enterprise",
        "--client-id",
        "desktop",
        "--idp-issuer",
        "https://idp.example.com",
        "--idp-client-id",
        "desktop",
        "--id-token-file",
        "tokens/id",
        "--client-key-file",
        "~/key.pem",
        environ={"MCP_BRIDGE_IDP_CLIENT_SECRET": "from-env"},
    )
    assert flags["id_token_file"] == os.path.join(os.getcwd(), "tokens/id")
    assert flags["client_key_file"] == os.path.expanduser("~/key.pem")
    settings = OAuthSettings.from_flags(flags)
    assert settings.grant is Grant.ENTERPRISE
    assert settings.idp_client_secret == "from-env"
    assert "from-env" not in repr(settings)


def test_the_grant_travels_to_the_daemon_in_the_profile() -> None:
    profile = ServerProfile.from_json({"url": "https://mcp.example.com/mcp", "oauth": ENTERPRISE})
    assert profile.oauth is not None
    assert profile.oauth.grant is Grant.ENTERPRISE
    assert profile.oauth.id_token_file == "/run/user/1/id-token"


@pytest.mark.parametrize(
    ("flags", "words"),
    [
        ({"grant": "password"}, "is not one of"),
        (
            {"client_key_file": "/k.pem"},
            "--client-key-file is for --grant client-credentials or enterprise",
        ),
        ({"grant": "client-credentials"}, "needs the client's --client-id"),
        ({"grant": "client-credentials", "client_id": "c", "device": True}, "--device"),
        (
            {
                "grant": "client-credentials",
                "client_id": "c",
                "idp_issuer": "https://idp.example.com",
            },
            "--idp-issuer is for --grant enterprise",
        ),
        (
            {
                "grant": "client-credentials",
                "client_id": "c",
                "client_secret": "s",
                "client_key_file": "/k",
            },
            "Both a client secret and --client-key-file",
        ),
        ({**ENTERPRISE, "id_token_file": None}, "needs --id-token-file"),
        ({**ENTERPRISE, "idp_client_secret": None}, "credentials at the identity provider"),
        ({**ENTERPRISE, "client_id": None}, "this client's id at the MCP server's"),
    ],
)
def test_flags_a_grant_cannot_use_are_refused_by_name(flags: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as refused:
        OAuthSettings.from_flags(flags)
    assert words in str(refused.value)


def test_client_credentials_may_leave_the_secret_to_the_vault() -> None:
    settings = OAuthSettings.from_flags({"grant": "client-credentials", "client_id": "svc"})
    assert (settings.client_secret, settings.client_key_file) == (None, None)


def test_enterprise_may_name_its_client_by_a_metadata_document() -> None:
    flags = {
        **ENTERPRISE,
        "client_id": None,
        "client_metadata_url": "https://app.example/client.json",
    }
    assert OAuthSettings.from_flags(flags).client_metadata_url == "https://app.example/client.json"
