"""The grants without a browser as a user meets them: `mcp-bridge add` stores the flags
(paths made absolute, no secret), `login NAME` just obtains a token, and `run NAME` serves
a client through the daemon and with --no-daemon, against the demo AS and its identity
provider, which enforce every rule (mcp_bridge/demo/machine_grants.py)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from mcp_bridge.demo.auth_modes import ServiceClient
from mcp_bridge.paths import bridge_paths
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.bridge_process import echo, mcp_bridge_cli, mcp_bridge_json, running_bridge
from tests.fixtures.grant_keys import make_client_key
from tests.fixtures.mcp_servers import text_of

SECRET = "s3cret-of-the-service"
# A thin host environment, the key-file vault, and a browser that fails: none may open.
ENV = {"MCP_BRIDGE_VAULT": "keyfile", "BROWSER": "/bin/false"}


def stored_entry(home: Path, name: str) -> dict[str, object]:
    servers_file = bridge_paths({"MCP_BRIDGE_HOME": str(home)}).servers_file
    entry: dict[str, object] = tomllib.loads(servers_file.read_text())["servers"][name]
    return entry


@pytest.mark.parametrize("daemon", [True, False], ids=["daemon", "no-daemon"])
async def test_a_service_key_added_by_name_logs_in_and_runs(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, daemon: bool
) -> None:
    key = make_client_key(tmp_path)
    server = auth_server(service_clients=(key.service_client("svc"),))
    # `add` stores it absolute: the daemon works in another directory.
    relative = os.path.relpath(key.path)  # noqa: ASYNC240 -- string arithmetic, no I/O
    code, said = await mcp_bridge_cli(
        bridge_home,
        "add",
        "svc",
        server.mcp_url,
        "--grant",
        "client-credentials",
        "--client-id",
        "svc",
        "--client-key-file",
        relative,
        env=ENV,
    )
    assert code == 0, said
    entry = stored_entry(bridge_home, "svc")
    assert entry["grant"] == "client-credentials"
    assert entry["client_key_file"] == str(key.path)

    code, said = await mcp_bridge_cli(bridge_home, "login", "svc", env=ENV)
    assert code == 0, said
    assert "obtained a token" in said
    assert server.stats()["client_credentials_grants"] == 1
    # No refresh token, yet nothing to worry about: the grant is simply made again.
    code, said = await mcp_bridge_cli(bridge_home, "status", env=ENV, stdout=True)
    assert code == 0, said
    assert "renewed by repeating the client-credentials grant" in said
    assert "not refreshable" not in said

    args = ("svc",) if daemon else ("svc", "--no-daemon")
    async with running_bridge(bridge_home, *args, env=ENV) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "from a service")) == "from a service"
        if daemon:
            report = await mcp_bridge_json(bridge_home, "status", "--json", env=ENV)
            known = report["daemon"]["servers"]
            assert [entry["grant"] for entry in known] == ["client-credentials"]
    stats = server.stats()
    assert stats["client_credentials_grants"] == 1  # the login's token served the run
    assert (stats["registrations"], stats["authorizations"]) == (0, 0)


async def test_a_secret_given_once_to_login_is_kept_in_the_vault_for_run(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(service_clients=(ServiceClient("svc", client_secret=SECRET),))
    add = ("add", "svc", server.mcp_url, "--grant", "client-credentials", "--client-id", "svc")
    assert (await mcp_bridge_cli(bridge_home, *add, env=ENV))[0] == 0
    with_secret = {**ENV, "MCP_BRIDGE_CLIENT_SECRET": SECRET}
    code, said = await mcp_bridge_cli(bridge_home, "login", "svc", env=with_secret)
    assert code == 0, said
    assert SECRET not in said
    assert (
        SECRET not in bridge_paths({"MCP_BRIDGE_HOME": str(bridge_home)}).servers_file.read_text()
    )
    # The token goes; the client (and its secret) stays, and `run` makes the grant again.
    assert (await mcp_bridge_cli(bridge_home, "logout", "svc", "--no-revoke", env=ENV))[0] == 0
    async with running_bridge(bridge_home, "svc", env=ENV) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "secret from the vault")) == "secret from the vault"
    assert server.stats()["client_credentials_grants"] == 2


async def test_without_any_secret_the_grant_says_where_to_put_one(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(service_clients=(ServiceClient("svc", client_secret=SECRET),))
    args = (server.mcp_url, "--grant", "client-credentials", "--client-id", "svc")
    async with running_bridge(bridge_home, *args, env=ENV) as bridge:
        refused = await bridge.initialize()
    message = refused["error"]["message"]
    assert "MCP_BRIDGE_CLIENT_SECRET" in message, refused
    assert server.stats()["client_credentials_grants"] == 0


def enterprise_args(server: AuthServer, directory: Path, *client_flags: str) -> list[str]:
    """`run`'s arguments for --grant enterprise at `server`, with a fresh ID token for
    alice in a file in `directory`; the client at the AS is "desktop" with `client_flags`."""
    assert server.idp_issuer is not None
    id_token_file = directory / "id-token"
    id_token_file.write_text(server.id_token("alice", "desktop"))
    return [
        server.mcp_url,
        "--grant",
        "enterprise",
        "--idp-issuer",
        server.idp_issuer,
        "--idp-client-id",
        "desktop",
        "--id-token-file",
        str(id_token_file),
        "--client-id",
        "desktop",
        *client_flags,
    ]


@pytest.mark.parametrize("daemon", [True, False], ids=["daemon", "no-daemon"])
async def test_enterprise_managed_authorization_through_run(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path, daemon: bool
) -> None:
    key = make_client_key(tmp_path)
    at_idp = ServiceClient("desktop", client_secret=SECRET)
    server = auth_server(
        idp=True, service_clients=(key.service_client("desktop"),), idp_clients=(at_idp,)
    )
    args = enterprise_args(server, tmp_path, "--client-key-file", str(key.path))
    if not daemon:
        args.append("--no-daemon")
    env = {**ENV, "MCP_BRIDGE_IDP_CLIENT_SECRET": SECRET}
    async with running_bridge(bridge_home, *args, env=env) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "as alice")) == "as alice"
    assert server.idp_stats()["id_jags_issued"] == 1
    assert server.stats()["jwt_bearer_grants"] == 1


async def test_an_identity_provider_that_refuses_is_an_error_for_the_client_not_a_crash(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path
) -> None:
    client = ServiceClient("desktop", client_secret=SECRET)
    server = auth_server(
        idp=True, idp_policy="deny", service_clients=(client,), idp_clients=(client,)
    )
    args = enterprise_args(server, tmp_path)
    env = {**ENV, "MCP_BRIDGE_IDP_CLIENT_SECRET": SECRET, "MCP_BRIDGE_CLIENT_SECRET": SECRET}
    async with running_bridge(bridge_home, *args, env=env) as bridge:
        refused = await bridge.initialize()
        assert "policy" in refused["error"]["message"], refused
        assert bridge.process.returncode is None  # still serving: the next call may work
    assert server.stats()["jwt_bearer_grants"] == 0


@pytest.mark.parametrize(
    ("flags", "expected"),
    [
        (["--id-token-file", "/tmp/x"], "--id-token-file is for --grant enterprise"),
        (["--grant", "client-credentials"], "needs the client's --client-id"),
        (["--grant", "enterprise", "--client-id", "c"], "--idp-issuer, --idp-client-id"),
        (
            ["--grant", "client-credentials", "--client-id", "c", "--client-key-file", "/nope"],
            "Cannot read the client key file /nope",
        ),
    ],
)
async def test_add_refuses_grant_flags_that_cannot_work(
    bridge_home: Path, flags: list[str], expected: str
) -> None:
    code, said = await mcp_bridge_cli(
        bridge_home, "add", "svc", "https://mcp.example.com/mcp", *flags, env=ENV
    )
    assert code != 0
    assert expected in said
    assert "Traceback" not in said


async def test_token_makes_the_grant_when_there_is_no_token_and_reuses_it(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(service_clients=(ServiceClient("svc", client_secret=SECRET),))
    add = ("add", "svc", server.mcp_url, "--grant", "client-credentials", "--client-id", "svc")
    assert (await mcp_bridge_cli(bridge_home, *add, env=ENV))[0] == 0
    with_secret = {**ENV, "MCP_BRIDGE_CLIENT_SECRET": SECRET}
    printed = []
    for _ in range(2):
        code, said = await mcp_bridge_cli(bridge_home, "token", "svc", env=with_secret, stdout=True)
        assert code == 0, said
        printed.append(said.splitlines()[0])
    assert printed[0] == printed[1]
    assert len(printed[0]) > 20
    assert server.stats()["client_credentials_grants"] == 1


async def test_logout_of_a_key_client_revokes_with_its_stored_key(
    auth_server: AuthServerFactory, bridge_home: Path, tmp_path: Path
) -> None:
    # Revocation authenticates the client as the grant did: with the key the named
    # server stores, which logout must read like login does.
    key = make_client_key(tmp_path)
    server = auth_server(service_clients=(key.service_client("svc"),))
    flags = ("--grant", "client-credentials", "--client-id", "svc", "--client-key-file")
    code, said = await mcp_bridge_cli(
        bridge_home, "add", "svc", server.mcp_url, *flags, str(key.path), env=ENV
    )
    assert code == 0, said
    assert (await mcp_bridge_cli(bridge_home, "login", "svc", env=ENV))[0] == 0

    code, said = await mcp_bridge_cli(bridge_home, "logout", "svc", env=ENV)
    assert code == 0, said
    assert "revoked at the authorization server" in said
    assert server.stats()["revocations"] == 1
