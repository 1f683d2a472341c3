"""`mcp-bridge doctor` end to end, against real peers: the demo authorization server and its
protected MCP server (healthy, and in the modes that break one step each), server-everything,
the https demo server with a CA nobody trusts, a static-token server, nothing at all on a
port, and a real Secret Service. Each broken peer must fail at its step with its hint, skip
what depends on it, and leave the vault, the AS and the daemon as they were."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import mcp_bridge_cli, oauth_env, running_bridge
from tests.fixtures.doctor_cli import Report, doctor
from tests.fixtures.hostile_server import static_token_server
from tests.fixtures.http_proxy import Proxy
from tests.fixtures.mcp_servers import ServerProcess, free_port
from tests.fixtures.secret_service import SecretServiceHandle
from tests.fixtures.tls_server import TlsServer


def outcomes(report: Report) -> dict[str, str]:
    return {name: step["outcome"] for name, step in report["by_step"].items()}


def assert_skipped_after(report: Report, failed: str, *later: str) -> None:
    steps = report["by_step"]
    assert steps[failed]["outcome"] == "fail", steps[failed]
    assert steps[failed]["next_step"]
    for name in later:
        assert steps[name]["outcome"] == "skip", steps[name]
        assert "did not pass" in steps[name]["detail"]


OAUTH_STEPS = ("auth-server-metadata", "client-registration", "pkce")


async def log_in(home: Path, url: str) -> None:
    code, said = await mcp_bridge_cli(home, "login", url, env=oauth_env())
    assert code == 0, said


async def test_a_healthy_oauth_server_after_a_login_passes_every_step(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    await log_in(bridge_home, server.mcp_url)
    vault = bridge_home / "data" / "vault.bin"
    before = (vault.read_bytes(), server.stats())

    code, report = await doctor(bridge_home, server.mcp_url)

    assert code == 0, report
    assert report["ok"] is True
    assert [step["step"] for step in report["steps"]][:2] == ["profile", "proxy"]
    assert {name for name, outcome in outcomes(report).items() if outcome != "pass"} == {"tls"}
    steps = report["by_step"]
    assert "plain http" in steps["tls"]["detail"]  # loopback http: nothing to check
    assert "MCP 2026-07-28" in steps["transport"]["detail"]
    assert "Bearer challenge" in steps["challenge"]["detail"]
    assert server.issuer in steps["resource-metadata"]["detail"]
    assert "registered at" in steps["client-registration"]["detail"]  # the kept one
    assert "S256" in steps["pkce"]["detail"]
    assert "expires in" in steps["login"]["detail"]
    assert "refreshable" in steps["login"]["detail"]
    # Read-only: the vault is as it was, and the AS saw no registration, grant or refresh.
    stats = server.stats()
    assert vault.read_bytes() == before[0]
    for counter in ("registrations", "authorizations", "token_exchanges", "refreshes"):
        assert stats[counter] == before[1][counter], counter
    code, token = await mcp_bridge_cli(
        bridge_home, "token", server.mcp_url, env=oauth_env(), stdout=True
    )
    assert code == 0
    assert token.strip() not in json.dumps(report)


async def test_before_any_login_nothing_is_registered_and_the_era_waits_for_a_sign_in(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    code, report = await doctor(bridge_home, server.mcp_url)
    assert code == 0, report
    steps = report["by_step"]
    assert steps["transport"]["outcome"] == "skip"
    assert "HTTP 401" in steps["transport"]["detail"]
    assert "dynamic registration at" in steps["client-registration"]["detail"]
    assert "none stored yet" in steps["login"]["detail"]
    assert server.stats()["registrations"] == 0
    assert not (bridge_home / "data").exists()  # no vault, no key file made


async def test_a_stored_token_the_server_no_longer_takes_fails_the_transport_step(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    await log_in(bridge_home, server.mcp_url)
    server.reset()  # the AS forgets every token: the stored one is refused
    code, report = await doctor(bridge_home, server.mcp_url)
    assert code == 1
    transport = report["by_step"]["transport"]
    assert transport["outcome"] == "fail"
    assert "refused the stored access token" in transport["detail"]
    assert f"mcp-bridge login {server.mcp_url}" in transport["next_step"]


@pytest.mark.peers
async def test_an_unauthenticated_server_needs_no_oauth_steps(
    everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    code, report = await doctor(bridge_home, everything_streamable.url)
    assert code == 0, report
    steps = report["by_step"]
    assert "Streamable HTTP with sessions" in steps["transport"]["detail"]
    assert "mcp-servers/everything" in steps["transport"]["detail"]
    assert steps["resource-metadata"]["outcome"] == "skip"
    for name in (*OAUTH_STEPS, "redirect", "login"):
        assert steps[name]["outcome"] == "skip", steps[name]
        assert "did not pass" not in steps[name]["detail"]  # not applicable, not blocked


async def test_nothing_listening_fails_at_connect(bridge_home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    code, report = await doctor(bridge_home, url)
    assert code == 1
    assert_skipped_after(report, "connect", "tls", "transport", "challenge", *OAUTH_STEPS)
    assert "nothing listens" in report["by_step"]["connect"]["detail"]
    assert "running" in report["by_step"]["connect"]["next_step"]


async def test_an_untrusted_certificate_fails_at_tls_naming_the_trust_store(
    tls_server: TlsServer, bridge_home: Path
) -> None:
    code, report = await doctor(bridge_home, tls_server.url)
    assert code == 1
    assert_skipped_after(report, "tls", "transport", "challenge", "resource-metadata")
    tls = report["by_step"]["tls"]
    assert "not trusted by the OS trust store" in tls["detail"]
    assert "TLS-inspecting proxy" in tls["detail"]
    assert "'mcp-bridge test CA'" in tls["detail"]  # who issued what the server presented
    assert "OS trust store" in tls["next_step"]


async def test_a_certificate_the_trust_store_knows_passes(
    tls_server: TlsServer, bridge_home: Path
) -> None:
    code, report = await doctor(
        bridge_home, tls_server.url, env={"SSL_CERT_FILE": str(tls_server.files.ca_cert)}
    )
    assert code == 0, report
    assert "verified with the OS trust store" in report["by_step"]["tls"]["detail"]
    assert report["by_step"]["transport"]["outcome"] == "pass"


async def test_a_static_token_server_fails_at_resource_metadata_with_the_header_advice(
    bridge_home: Path,
) -> None:
    def prm_of(url: str) -> dict[str, Any]:
        return {"resource": url, "bearer_methods_supported": ["header"]}

    async with static_token_server(prm_of) as server:
        code, report = await doctor(bridge_home, server.url)
        methods = {method for method, _, _ in server.requests}
    assert code == 1
    steps = report["by_step"]
    assert "without WWW-Authenticate" in steps["challenge"]["detail"]
    assert_skipped_after(report, "resource-metadata", *OAUTH_STEPS, "redirect")
    assert "static token" in steps["resource-metadata"]["detail"]
    assert "--header 'Authorization: Bearer <token>'" in steps["resource-metadata"]["next_step"]
    assert methods == {"GET", "POST"}  # probes and metadata: nothing else was attempted


async def test_metadata_for_another_resource_fails_at_resource_metadata(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(prm_resource_mismatch=True)
    code, report = await doctor(bridge_home, server.mcp_url)
    assert code == 1
    assert_skipped_after(report, "resource-metadata", *OAUTH_STEPS)
    prm = report["by_step"]["resource-metadata"]
    assert "not-this-server" in prm["detail"]
    assert "MCP endpoint exactly" in prm["next_step"]


async def test_missing_authorization_server_metadata_fails_its_step(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(metadata_missing=True)
    code, report = await doctor(bridge_home, server.mcp_url)
    assert code == 1
    assert_skipped_after(report, "auth-server-metadata", "client-registration", "pkce")
    assert "No authorization server metadata" in report["by_step"]["auth-server-metadata"]["detail"]
    assert report["by_step"]["redirect"]["outcome"] == "pass"  # it needs no metadata


async def test_an_authorization_server_without_s256_fails_at_pkce(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(no_pkce_methods=True)
    code, report = await doctor(bridge_home, server.mcp_url)
    assert code == 1
    steps = report["by_step"]
    assert steps["pkce"]["outcome"] == "fail"
    assert "PKCE" in steps["pkce"]["detail"]
    assert "S256" in steps["pkce"]["next_step"]
    assert steps["client-registration"]["outcome"] == "pass"


async def test_no_registration_and_no_client_id_fails_at_registration(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(no_registration=True)
    code, report = await doctor(bridge_home, server.mcp_url)
    assert code == 1
    registration = report["by_step"]["client-registration"]
    assert registration["outcome"] == "fail"
    assert "no registration endpoint" in registration["detail"]
    assert "--client-id" in registration["next_step"]
    assert "--header 'Authorization: Bearer <token>'" in registration["next_step"]

    code, report = await doctor(bridge_home, server.mcp_url, "--client-id", "by-hand")
    assert code == 0, report
    assert "pre-registered client by-hand" in report["by_step"]["client-registration"]["detail"]
    assert "by-hand must have it registered" in report["by_step"]["redirect"]["detail"]


async def test_a_callback_port_in_use_fails_at_redirect(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, report = await doctor(bridge_home, server.mcp_url, "--callback-port", str(port))
    assert code == 1
    redirect = report["by_step"]["redirect"]
    assert redirect["outcome"] == "fail"
    assert f"port {port}" in redirect["detail"]
    assert "--callback-port" in redirect["next_step"]


async def test_without_a_keyring_the_keyring_steps_fail_and_the_login_is_skipped(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    code, report = await doctor(bridge_home, server.mcp_url, vault=None)
    assert code == 1
    assert_skipped_after(report, "keyring", "login")
    keyring = report["by_step"]["keyring"]
    assert "no keyring backend is available" in keyring["detail"]
    assert "MCP_BRIDGE_VAULT=keyfile" in keyring["next_step"]
    host = report["by_step"]["keyring-host-env"]
    assert host["outcome"] == "fail"
    assert '"env"' in host["next_step"]
    assert not (bridge_home / "data").exists()


@pytest.mark.keyring
async def test_a_keyring_reached_here_but_not_from_a_desktop_client_fails_the_host_step(
    private_secret_service: SecretServiceHandle, auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    bus = {
        "DBUS_SESSION_BUS_ADDRESS": private_secret_service.env["DBUS_SESSION_BUS_ADDRESS"],
        "XDG_RUNTIME_DIR": private_secret_service.env["XDG_RUNTIME_DIR"],
    }
    code, report = await doctor(bridge_home, server.mcp_url, vault=None, env=bus)
    assert code == 1
    steps = report["by_step"]
    assert steps["keyring"]["outcome"] == "pass"
    assert "OS keyring" in steps["keyring"]["detail"]
    host = steps["keyring-host-env"]
    assert host["outcome"] == "fail"
    assert "with only HOME, LOGNAME, PATH, SHELL, TERM, USER" in host["detail"]
    assert steps["login"]["outcome"] == "pass"


async def test_a_named_server_is_checked_with_its_stored_flags(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server()
    added = await mcp_bridge_cli(
        bridge_home, "add", "work", server.mcp_url, "--scope", "mcp", env={}
    )
    assert added[0] == 0, added
    code, report = await doctor(bridge_home, "work")
    assert code == 0, report
    profile = report["by_step"]["profile"]["detail"]
    assert "server 'work' of" in profile
    assert "scopes mcp" in profile
    assert report["server"] == server.mcp_url

    code, report = await doctor(bridge_home, "nosuch")
    assert code == 1
    assert report["by_step"]["profile"]["outcome"] == "fail"
    assert "mcp-bridge add nosuch" in report["by_step"]["profile"]["next_step"]
    assert report["by_step"]["dns"]["outcome"] == "skip"


@pytest.mark.peers
async def test_a_running_daemon_is_reported_with_what_it_serves(
    everything_streamable: ServerProcess, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, everything_streamable.url) as bridge:
        assert "result" in await bridge.initialize()
        code, report = await doctor(bridge_home, everything_streamable.url)
    assert code == 0, report
    daemon = report["by_step"]["daemon"]["detail"]
    assert daemon.startswith("running: pid")
    assert "it serves this server" in daemon


async def test_text_output_marks_each_step_and_its_next_step(bridge_home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    code, text = await mcp_bridge_cli(
        bridge_home, "doctor", url, env={"MCP_BRIDGE_VAULT": "keyfile"}, stdout=True
    )
    assert code == 1
    assert "  FAIL  connect" in text
    assert "next: Check that the server is running" in text
    assert "  skip  tls" in text
    assert "  pass  profile" in text


async def test_through_a_proxy_the_first_hop_is_the_proxy_and_tls_is_checked_through_it(
    tinyproxy: Proxy, tls_server: TlsServer, bridge_home: Path
) -> None:
    env = {"HTTPS_PROXY": tinyproxy.url, "SSL_CERT_FILE": str(tls_server.files.ca_cert)}
    code, report = await doctor(bridge_home, tls_server.url, env=env)
    assert code == 0, report
    steps = report["by_step"]
    assert f"HTTPS_PROXY applies: through {tinyproxy.url}" in steps["proxy"]["detail"]
    assert '"env"' in steps["proxy"]["detail"]  # a desktop client passes no proxy variables
    assert steps["connect"]["detail"].startswith("connected to the proxy 127.0.0.1")
    assert "verified with the OS trust store" in steps["tls"]["detail"]
    assert steps["transport"]["outcome"] == "pass"
    assert f"127.0.0.1:{tls_server.port}" in tinyproxy.requests_seen()
