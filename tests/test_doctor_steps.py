"""The parts of `doctor` that decide without a network: which steps a failure skips, what a
certificate error, a challenge, a proxy variable, a stored login and the daemon's reply
mean; and that reading the vault for it changes nothing."""

from __future__ import annotations

import datetime
import os
import ssl
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.auth.auth_records import StoredTokens
from mcp_bridge.auth.discovery import AuthorizationContext
from mcp_bridge.auth.http_step import HttpRequest, HttpResponse, Step
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.settings import Grant, OAuthSettings
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.engine.checkup.client_steps import redirect_finding
from mcp_bridge.engine.checkup.discovery_steps import Discovered, challenge_finding, traced
from mcp_bridge.engine.checkup.findings import NEEDS, STEPS, Finding, Ledger, Outcome, exit_code
from mcp_bridge.engine.checkup.local_steps import (
    StoredLogin,
    daemon_finding,
    host_environment,
    login_finding,
)
from mcp_bridge.engine.checkup.network import (
    PresentedCertificate,
    Reach,
    certificate_advice,
    proxy_finding,
)
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.errors import VaultError
from mcp_bridge.paths import bridge_paths
from mcp_bridge.store.inspection import inspect_vault
from mcp_bridge.store.keyring_source import KeyringKeySource
from mcp_bridge.store.selection import open_vault
from tests.fixtures.http_steps import finish

URL = "https://mcp.example.com/mcp"


def test_a_failure_skips_what_needs_it_and_what_needs_that() -> None:
    ledger = Ledger()
    ledger.record(Finding.failed("dns", "does not resolve", "check it"))
    assert ledger.blocker("connect") == "dns"
    skipped = ledger.skipped("connect", "dns")
    assert skipped.outcome is Outcome.SKIP
    assert ledger.blocker("tls") == "connect"  # transitively
    assert ledger.blocker("keyring") is None  # independent of the network


def test_a_step_that_does_not_apply_blocks_nothing() -> None:
    ledger = Ledger()
    ledger.record(Finding.not_applicable("tls", "plain http"))
    assert ledger.blocker("transport") is None
    assert exit_code([Finding.not_applicable("tls", "plain http")]) == 0
    assert exit_code([Finding.failed("tls", "x", "y")]) == 1


def test_every_dependency_is_an_earlier_step() -> None:
    for step, needs in NEEDS.items():
        for need in needs:
            assert STEPS.index(need) < STEPS.index(step), (step, need)


def verify_error(code: int, message: str) -> ssl.SSLCertVerificationError:
    error = ssl.SSLCertVerificationError(1, message)
    error.verify_code = code
    error.verify_message = message
    return error


PRESENTED = PresentedCertificate(
    names=("proxy.corp.example",),
    issuer="Corp Inspection CA",
    not_after=datetime.datetime(2030, 1, 1, tzinfo=datetime.UTC),
    tls_version="TLSv1.3",
)


def test_an_unknown_issuer_points_at_an_inspecting_proxy_and_the_os_trust_store() -> None:
    detail, next_step = certificate_advice(
        verify_error(20, "unable to get local issuer certificate"), PRESENTED, "mcp.example.com"
    )
    assert "TLS-inspecting proxy" in detail
    assert "'Corp Inspection CA'" in next_step
    assert "OS trust store" in next_step


@pytest.mark.parametrize(
    ("code", "said", "advice"),
    [
        (10, "expired", "server's owner"),
        (62, "proxy.corp.example", "host name in the URL"),
        (99, "refused", "server's owner"),
    ],
)
def test_other_verification_failures_say_whose_it_is(code: int, said: str, advice: str) -> None:
    detail, next_step = certificate_advice(verify_error(code, "some reason"), PRESENTED, "x")
    assert said in detail
    assert advice in next_step


def test_a_challenge_for_basic_only_is_a_failure_with_the_header_advice() -> None:
    found = Discovered()
    finding = challenge_finding(Reach(401, 'Basic realm="corp"'), found)
    assert finding.outcome is Outcome.FAIL
    assert "basic" in finding.detail
    assert "--header" in finding.next_step
    assert found.unauthorized


def test_a_bearer_challenge_is_read_for_discovery() -> None:
    found = Discovered()
    header = 'Bearer resource_metadata="https://mcp.example.com/prm", scope="read write"'
    finding = challenge_finding(Reach(401, header), found)
    assert finding.outcome is Outcome.PASS
    assert "scope=read write" in finding.detail
    assert found.challenge is not None
    assert found.challenge.resource_metadata == "https://mcp.example.com/prm"


def test_no_answer_and_no_401_are_told_apart() -> None:
    assert challenge_finding(Reach(error="boom"), Discovered()).outcome is Outcome.FAIL
    found = Discovered()
    assert challenge_finding(Reach(200), found).outcome is Outcome.PASS
    assert not found.needs_sign_in


@given(st.text(max_size=300))
def test_any_www_authenticate_header_gives_a_finding(header: str) -> None:
    finding = challenge_finding(Reach(401, header), Discovered())
    assert finding.outcome in (Outcome.PASS, Outcome.FAIL)
    # One line, whatever the server sent: no control character reaches the terminal.
    assert all(ch >= " " and ch != "\x7f" for ch in finding.detail)


def test_traced_notes_each_url_and_status_and_returns_the_result() -> None:
    def two_gets() -> Step[tuple[int, int]]:
        first = yield HttpRequest.get("https://a.example/1")
        second = yield HttpRequest.get("https://a.example/2")
        return (first.status, second.status)

    trail: list[tuple[str, int]] = []
    step = traced(two_gets(), trail)
    assert next(step).url == "https://a.example/1"
    assert step.send(HttpResponse(404)).url == "https://a.example/2"
    assert finish(step, HttpResponse(200, url="https://a.example/2b")) == (404, 200)
    assert trail == [("https://a.example/1", 404), ("https://a.example/2b", 200)]


# http_client.proxy_for answers once per scheme, host and port for the life of the process
# (as `run` does): each test below asks about a host of its own.


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


def test_an_http_proxy_applies_and_its_password_is_not_shown(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    no_proxy_env.setenv("HTTPS_PROXY", "http://me:s3cret@proxy.corp.example:3128")
    finding, endpoint = proxy_finding("https://proxied.example.com/mcp", os.environ)
    assert finding.outcome is Outcome.PASS
    assert "HTTPS_PROXY applies" in finding.detail
    assert "s3cret" not in finding.detail
    assert (endpoint.host, endpoint.port, endpoint.via_proxy) == ("proxy.corp.example", 3128, True)


def test_an_https_proxy_url_is_a_failure_aiohttp_would_ignore(
    no_proxy_env: pytest.MonkeyPatch,
) -> None:
    no_proxy_env.setenv("HTTPS_PROXY", "https://proxy.corp.example:3128")
    finding, endpoint = proxy_finding("https://https-proxied.example.com/mcp", os.environ)
    assert finding.outcome is Outcome.FAIL
    assert "http://host:port" in finding.next_step
    assert not endpoint.via_proxy


def test_no_proxy_exempts_a_host(no_proxy_env: pytest.MonkeyPatch) -> None:
    no_proxy_env.setenv("HTTPS_PROXY", "http://proxy.corp.example:3128")
    no_proxy_env.setenv("NO_PROXY", "exempt.example.com")
    finding, endpoint = proxy_finding("https://exempt.example.com/mcp", os.environ)
    assert "NO_PROXY exempts exempt.example.com" in finding.detail
    assert endpoint.host == "exempt.example.com"


def test_the_host_environment_keeps_only_what_a_desktop_client_passes() -> None:
    environ = {
        "HOME": "/home/u",
        "PATH": "/usr/bin",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/run/user/1/bus",
        "XDG_RUNTIME_DIR": "/run/user/1",
        "MCP_BRIDGE_VAULT": "keyfile",
        "HTTPS_PROXY": "http://proxy:3128",
    }
    thin, carried = host_environment(environ)
    assert thin == {"HOME": "/home/u", "PATH": "/usr/bin", "MCP_BRIDGE_VAULT": "keyfile"}
    assert carried == ["MCP_BRIDGE_VAULT"]
    thin, carried = host_environment({"HOME": "/h", "MCP_BRIDGE_VAULT": "keyring"})
    assert thin == {"HOME": "/h"}  # the keyring is what is being checked
    assert carried == []


def test_the_daemon_reply_is_told_with_what_it_knows_of_this_server() -> None:
    profile = ServerProfile(URL)
    assert daemon_finding(None, profile).outcome is Outcome.PASS
    reply: dict[str, object] = {
        "pid": 7,
        "version": "0.0.1",
        "uptime_s": 3,
        "connections": 1,
        "servers": [{"resource": URL, "refreshes": 2, "last_failure": "invalid_grant"}],
    }
    finding = daemon_finding(reply, profile)
    assert finding.outcome is Outcome.FAIL
    assert "invalid_grant" in finding.detail
    assert f"mcp-bridge login {URL}" in finding.next_step
    assert "the next `run` restarts it" in finding.detail


async def test_inspecting_a_vault_that_is_not_there_makes_nothing(tmp_path: Path) -> None:
    environ = {"MCP_BRIDGE_HOME": str(tmp_path / "home"), "MCP_BRIDGE_VAULT": "keyfile"}
    found = await inspect_vault(environ)
    assert found.records is None
    assert not (tmp_path / "home").exists()


async def test_a_damaged_vault_is_reported_and_left_where_it_is(tmp_path: Path) -> None:
    environ = {"MCP_BRIDGE_HOME": str(tmp_path), "MCP_BRIDGE_VAULT": "keyfile"}
    vault = open_vault(environ=environ)
    async with vault.transaction() as txn:
        txn.put("servers", URL, {"x": 1})
    paths = bridge_paths(environ)
    paths.vault_file.write_bytes(paths.vault_file.read_bytes()[:-5] + b"xxxxx")
    damaged = paths.vault_file.read_bytes()
    with pytest.raises(VaultError, match="cannot be read"):
        await inspect_vault(environ)
    assert paths.vault_file.read_bytes() == damaged
    assert sorted(p.name for p in paths.data_dir.iterdir()) == ["vault.bin", "vault.key"]


class RecordingKeyring:
    """A keyring backend that keeps what it is given and notes every call."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}
        self.writes: list[str] = []

    def get_password(self, service: str, username: str) -> str | None:
        return self.items.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.writes.append(f"set {service}/{username}")
        self.items[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.writes.append(f"delete {service}/{username}")
        self.items.pop((service, username), None)


async def test_a_read_only_keyring_source_never_writes(tmp_path: Path) -> None:
    environ = {"MCP_BRIDGE_HOME": str(tmp_path)}
    backend = RecordingKeyring()
    vault = open_vault(environ=environ, keyring_backend=backend)
    async with vault.transaction() as txn:
        txn.put("servers", URL, {"x": 1})
    backend.writes.clear()

    found = await inspect_vault(environ, keyring_backend=backend)
    assert found.records is not None
    assert found.view().get("servers", URL) == {"x": 1}
    assert backend.writes == []  # no probe item, no key

    with pytest.raises(VaultError):
        KeyringKeySource(backend=backend, read_only=True).new_key()
    assert backend.writes == []


def test_a_device_login_at_a_server_without_one_fails_at_redirect() -> None:
    issuer = "https://as.example.com"
    metadata = AuthServerMetadata(issuer, f"{issuer}/authorize", f"{issuer}/token")
    finding = redirect_finding(OAuthSettings(device=True), metadata, None)
    assert finding.outcome is Outcome.FAIL
    assert "Drop --device" in finding.next_step
    with_device = AuthServerMetadata(
        issuer, f"{issuer}/a", f"{issuer}/t", device_authorization_endpoint=f"{issuer}/device"
    )
    assert redirect_finding(OAuthSettings(device=True), with_device, None).outcome is Outcome.PASS


@pytest.mark.parametrize("grant", [Grant.CLIENT_CREDENTIALS, Grant.ENTERPRISE])
def test_a_login_a_grant_renews_is_not_said_to_need_a_sign_in_at_expiry(grant: Grant) -> None:
    issuer = "https://as.example.com"
    metadata = AuthServerMetadata(issuer, f"{issuer}/authorize", f"{issuer}/token")
    profile = ServerProfile(URL)
    context = AuthorizationContext(profile.resource, issuer, metadata, None)
    tokens = TokenSet("at", issuer, profile.resource, expires_at=1000.0 + 3600)
    login = StoredLogin(context, None, StoredTokens(tokens, 1000.0))
    if grant is Grant.CLIENT_CREDENTIALS:
        settings = OAuthSettings(grant=grant, client_id="svc")
    else:
        settings = OAuthSettings(
            grant=grant,
            client_id="svc",
            idp_issuer="https://idp.example.com",
            idp_client_id="desktop",
            id_token_file="/ids/token",
            idp_client_key_file="/ids/key.pem",
        )
    by_grant = login_finding(login, replace(profile, oauth=settings), now=1000.0)
    assert f"renewed by repeating the {grant.value} grant" in by_grant.detail
    assert "signs in again" not in by_grant.detail
    by_browser = login_finding(login, profile, now=1000.0)
    assert "the next request signs in again" in by_browser.detail
