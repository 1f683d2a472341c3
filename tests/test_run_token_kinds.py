"""Authorization servers whose tokens the resource refuses unless the client sends the right
kind, through `mcp-bridge run` with and without the daemon. The demo AS plays them:
- `id_token_bearer`, as AWS Cognito in front of an API that checks ID tokens: its access
  tokens name no audience and are refused; `--use-id-token` sends the ID token, and the
  refreshes are timed by the ID token's own `exp`;
- `audience_param`, as Auth0: an API token only when /authorize names the `audience`.
Without the right flag, the first request after the login is answered with what to change,
and no second login follows."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import echo, mcp_bridge_cli, oauth_env, running_bridge
from tests.fixtures.mcp_servers import text_of

RUN_MODES = [pytest.param((), id="daemon"), pytest.param(("--no-daemon",), id="in-process")]
ID_TOKEN_TTL_S = 3.0


@pytest.mark.parametrize("run_flags", RUN_MODES)
async def test_use_id_token_sends_it_and_renews_it_before_its_exp(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    # The access token lives an hour, the ID token seconds: only the ID token's `exp` can
    # say when to refresh.
    server = auth_server(id_token_bearer=True, id_token_ttl_s=ID_TOKEN_TTL_S)
    args = (*run_flags, server.mcp_url, "--use-id-token")
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "with the ID token")) == "with the ID token"
        signed_in = server.stats()
        await asyncio.sleep(ID_TOKEN_TTL_S + 0.5)
        assert text_of(await echo(bridge, "after its exp")) == "after its exp"
    stats = server.stats()
    assert stats["authorizations"] == 1
    assert stats["refreshes"] >= 1
    assert "openid" in stats["last"]["token_request"]["scope"].split()
    # Renewed ahead of its exp, not after a refusal: no 401 since the sign-in's own.
    assert stats["unauthorized"] == signed_in["unauthorized"]


async def test_a_server_added_with_use_id_token_keeps_the_flag(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(id_token_bearer=True)
    code, said = await mcp_bridge_cli(
        bridge_home, "add", "cognito", server.mcp_url, "--use-id-token", env=oauth_env()
    )
    assert code == 0, said
    async with running_bridge(bridge_home, "cognito", env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "named")) == "named"


@pytest.mark.parametrize("run_flags", RUN_MODES)
async def test_an_access_token_refused_at_once_names_use_id_token_and_signs_in_once(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    server = auth_server(id_token_bearer=True)
    # The scope that brings an ID token is asked for by hand, as a Cognito user would.
    args = (*run_flags, server.mcp_url, "--scope", "mcp openid")
    async with running_bridge(bridge_home, *args, env=oauth_env()) as b:
        refused = await b.initialize()
        message = refused["error"]["message"]
        assert "--use-id-token" in message, refused
        assert "ID token" in message
        again = await b.request("tools/list")
        assert "--use-id-token" in again["error"]["message"], again
        assert b.process.returncode is None
    stats = server.stats()
    assert stats["authorizations"] == 1  # never a second sign-in
    assert stats["refreshes"] == 0  # nor a refresh: a new token of that kind is no better


@pytest.mark.parametrize("run_flags", RUN_MODES)
async def test_a_token_for_no_api_names_the_audience_parameter(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    server = auth_server(audience_param=True)
    async with running_bridge(bridge_home, *run_flags, server.mcp_url, env=oauth_env()) as b:
        refused = await b.initialize()
        assert "--authorize-param audience=" in refused["error"]["message"], refused
        again = await b.request("tools/list")
        assert "--authorize-param audience=" in again["error"]["message"], again
    assert server.stats()["authorizations"] == 1


async def test_the_audience_parameter_gets_a_token_for_the_api(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(audience_param=True)
    args = ("--no-daemon", server.mcp_url, "--authorize-param", f"audience={server.mcp_url}")
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "for the API")) == "for the API"


@pytest.mark.parametrize("run_flags", RUN_MODES)
async def test_no_resource_leaves_it_out_from_the_first_try(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    server = auth_server(rejects_resource=True)
    args = (*run_flags, server.mcp_url, "--no-resource")
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "no resource")) == "no resource"
    stats = server.stats()
    assert (stats["authorize_requests"], stats["resource_refusals"]) == (1, 0)
    assert stats["last"]["token_request"]["resource"] is None


async def test_login_says_at_once_when_the_server_refuses_the_new_token(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(id_token_bearer=True)
    refused, said = await mcp_bridge_cli(
        bridge_home, "login", server.mcp_url, "--scope", "mcp openid", env=oauth_env()
    )
    assert refused != 0
    assert "--use-id-token" in said, said
    assert "Traceback" not in said


@pytest.mark.parametrize("run_flags", RUN_MODES)
async def test_a_login_with_use_id_token_serves_every_later_run(
    auth_server: AuthServerFactory, bridge_home: Path, run_flags: tuple[str, ...]
) -> None:
    """The choice is kept with the tokens: `run` needs no flag to send the ID token."""
    server = auth_server(id_token_bearer=True)
    code, said = await mcp_bridge_cli(
        bridge_home, "login", server.mcp_url, "--use-id-token", env=oauth_env()
    )
    assert code == 0, said
    async with running_bridge(bridge_home, *run_flags, server.mcp_url, env=oauth_env()) as b:
        assert "result" in await b.initialize()
        assert text_of(await echo(b, "kept")) == "kept"
    assert server.stats()["authorizations"] == 1
