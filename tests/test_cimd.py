"""Client ID Metadata Documents end to end (issue 4, MCP Client Registration): `mcp-bridge run`
and `mcp-bridge login` as child processes, against the fixture AS in `cimd` mode, which
fetches the client's document over real https (a throwaway CA) from the test process.

The bridge never fetches its own document: the AS does. So `cimd_fetches` in /stats and
the document server's hit count together show who used the client id, and
`last.authorize.client_id` shows which client id the login used."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from mcp_bridge.demo.auth_modes import PreRegisteredClient
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.bridge_process import (
    BridgeProcess,
    echo,
    mcp_bridge_cli,
    oauth_env,
    running_bridge,
)
from tests.fixtures.mcp_servers import text_of
from tests.fixtures.oauth_client import needs_chromium
from tests.fixtures.tls_server import (
    DocumentServer,
    TlsFiles,
    client_document,
)

CHROMIUM_BROWSER = Path(__file__).parent / "browsers" / "headless_chromium.py"

DOCUMENT_PATH = "/oauth/mcp-bridge.json"


@pytest.fixture
def document_url(documents: DocumentServer) -> str:
    url = documents.url(DOCUMENT_PATH)
    return documents.put_json(DOCUMENT_PATH, client_document(url))


async def whoami(bridge: BridgeProcess) -> dict[str, Any]:
    response = await bridge.request("tools/call", {"name": "whoami", "arguments": {}})
    answer: dict[str, Any] = json.loads(text_of(response))
    return answer


async def test_run_logs_in_with_the_document_url_as_its_client_id(
    cimd_server: AuthServer, documents: DocumentServer, document_url: str, bridge_home: Path
) -> None:
    args = (cimd_server.mcp_url, "--client-metadata-url", document_url)
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "via cimd")) == "via cimd"
        assert (await whoami(bridge))["client_id"] == document_url
        assert await bridge.close_stdin_and_wait() == 0
    stats = cimd_server.stats()
    counts = {k: stats[k] for k in ("registrations", "cimd_fetches", "authorizations")}
    assert counts == {"registrations": 0, "cimd_fetches": 1, "authorizations": 1}
    assert stats["last"]["authorize"]["client_id"] == document_url
    assert stats["last"]["token_request"]["client_id"] == document_url
    assert stats["last"]["token_request"]["client_auth"] == "none"  # CIMD: no shared secret
    # The redirect URI had the listener's ephemeral port; the document lists none.
    assert stats["last"]["authorize"]["redirect_uri"].startswith("http://127.0.0.1:")
    assert documents.hits == {DOCUMENT_PATH: 1}  # the AS fetched it once; the bridge never

    # A second process uses the stored login: no new fetch, no new authorization.
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "again")) == "again"
        assert await bridge.close_stdin_and_wait() == 0
    stats = cimd_server.stats()
    assert (stats["registrations"], stats["authorizations"]) == (0, 1)


async def test_the_localhost_callback_matches_the_documents_localhost_redirect_uri(
    cimd_server: AuthServer, document_url: str, bridge_home: Path
) -> None:
    args = (
        cimd_server.mcp_url,
        "--client-metadata-url",
        document_url,
        "--callback-host",
        "localhost",
    )
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert (await whoami(bridge))["client_id"] == document_url
    stats = cimd_server.stats()
    assert stats["last"]["authorize"]["redirect_uri"].startswith("http://localhost:")
    assert (stats["registrations"], stats["authorizations"]) == (0, 1)


async def test_without_a_document_url_the_bridge_falls_back_to_dynamic_registration(
    cimd_server: AuthServer, documents: DocumentServer, document_url: str, bridge_home: Path
) -> None:
    async with running_bridge(bridge_home, cimd_server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "via dcr")) == "via dcr"
        client_id = (await whoami(bridge))["client_id"]
    stats = cimd_server.stats()
    counts = {k: stats[k] for k in ("registrations", "cimd_fetches", "authorizations")}
    assert counts == {"registrations": 1, "cimd_fetches": 0, "authorizations": 1}
    assert client_id == stats["last"]["authorize"]["client_id"] != document_url
    assert documents.hits == {}


async def test_a_document_url_is_not_used_where_the_as_does_not_advertise_cimd(
    auth_server: AuthServerFactory, documents: DocumentServer, document_url: str, bridge_home: Path
) -> None:
    server = auth_server()  # no client_id_metadata_document_supported: DCR it is
    args = (server.mcp_url, "--client-metadata-url", document_url)
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert (await whoami(bridge))["client_id"] != document_url
    stats = server.stats()
    assert (stats["registrations"], stats["cimd_fetches"], stats["authorizations"]) == (1, 0, 1)
    assert documents.hits == {}


@pytest.mark.browser
@needs_chromium
async def test_run_with_a_document_url_through_headless_chromium_and_a_consent_page(
    auth_server: AuthServerFactory,
    tls_files: TlsFiles,
    documents: DocumentServer,
    document_url: str,
    bridge_home: Path,
    tmp_path: Path,
) -> None:
    server = auth_server(
        cimd=True, cimd_ca_file=str(tls_files.ca_cert), consent="page", consent_autosubmit=True
    )
    record = tmp_path / "chromium.json"
    env = {**oauth_env(), "BROWSER": str(CHROMIUM_BROWSER), "BROWSER_RECORD": str(record)}
    args = (server.mcp_url, "--client-metadata-url", document_url)
    async with running_bridge(bridge_home, *args, env=env) as bridge:
        assert "result" in await bridge.initialize()
        assert (await whoami(bridge))["client_id"] == document_url
    stats = server.stats()
    counts = {k: stats[k] for k in ("registrations", "cimd_fetches", "consent_pages")}
    assert counts == {"registrations": 0, "cimd_fetches": 1, "consent_pages": 1}
    assert "Signed in" in json.loads(record.read_text())["page"]


async def test_a_later_process_refreshes_a_cimd_login_without_a_new_sign_in(
    auth_server: AuthServerFactory,
    tls_files: TlsFiles,
    documents: DocumentServer,
    document_url: str,
    bridge_home: Path,
) -> None:
    """The grant belongs to the document's client id: a process started after `login` must
    refresh with that id (kept in the vault), not send the user to the browser again."""
    server = auth_server(cimd=True, cimd_ca_file=str(tls_files.ca_cert), access_ttl_s=2)
    argv = ("login", server.mcp_url, "--client-metadata-url", document_url)
    code, said = await mcp_bridge_cli(bridge_home, *argv, env=oauth_env())
    assert code == 0, said
    await asyncio.sleep(3)  # the access token has expired by now
    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "refreshed")) == "refreshed"
    stats = server.stats()
    assert (stats["authorizations"], stats["refreshes"]) == (1, 1)
    assert stats["last"]["token_request"]["client_id"] == document_url


async def test_a_later_process_whose_grant_expired_signs_in_again_with_the_document(
    auth_server: AuthServerFactory,
    tls_files: TlsFiles,
    documents: DocumentServer,
    document_url: str,
    bridge_home: Path,
) -> None:
    server = auth_server(
        cimd=True, cimd_ca_file=str(tls_files.ca_cert), access_ttl_s=2, refresh_ttl_s=2
    )
    argv = ("login", server.mcp_url, "--client-metadata-url", document_url)
    code, said = await mcp_bridge_cli(bridge_home, *argv, env=oauth_env())
    assert code == 0, said
    await asyncio.sleep(3)  # access and refresh token have both expired
    args = (server.mcp_url, "--client-metadata-url", document_url)
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()  # refresh refused -> a new sign-in
        assert (await whoami(bridge))["client_id"] == document_url
    stats = server.stats()
    assert (stats["authorizations"], stats["registrations"], stats["cimd_fetches"]) == (2, 0, 1)


async def test_a_later_process_refreshes_a_pre_registered_login(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    client = PreRegisteredClient("desktop-app", "http://127.0.0.1/callback")
    server = auth_server(pre_registered=(client,), access_ttl_s=2)
    argv = ("login", server.mcp_url, "--client-id", "desktop-app")
    code, said = await mcp_bridge_cli(bridge_home, *argv, env=oauth_env())
    assert code == 0, said
    await asyncio.sleep(3)
    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert (await whoami(bridge))["client_id"] == "desktop-app"
    stats = server.stats()
    assert (stats["authorizations"], stats["refreshes"], stats["registrations"]) == (1, 1, 0)


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://127.0.0.1:9/oauth/client.json", "not https"),
        ("https://127.0.0.1:9", "no path"),
        ("https://127.0.0.1:9/", "no path"),
        ("https://127.0.0.1:9/oauth/client.json#frag", "a fragment"),
        ("https://me@127.0.0.1:9/oauth/client.json", "user info"),
        ("https://127.0.0.1:9/oauth/../client.json", "a dot segment"),
    ],
)
async def test_an_unusable_document_url_is_refused_before_any_request(
    auth_server: AuthServerFactory, bridge_home: Path, url: str, why: str
) -> None:
    server = auth_server()
    async with running_bridge(
        bridge_home, server.mcp_url, "--client-metadata-url", url, env=oauth_env()
    ) as bridge:
        # It exits on the flag alone: nothing was written to its stdin.
        assert await bridge.close_stdin_and_wait() == 2, why
        assert bridge.process.stderr is not None
        said = (await bridge.process.stderr.read()).decode()
    assert "client metadata document URL" in said, said
    assert "Use an https URL with a path" in said
    stats = server.stats()
    assert (stats["authorize_requests"], stats["registrations"]) == (0, 0)


async def test_login_command_uses_the_document_url(
    cimd_server: AuthServer, documents: DocumentServer, document_url: str, bridge_home: Path
) -> None:
    argv = ("login", cimd_server.mcp_url, "--client-metadata-url", document_url)
    code, said = await mcp_bridge_cli(bridge_home, *argv, env=oauth_env())
    assert code == 0, said
    assert f"logged in to {cimd_server.mcp_url}" in said
    stats = cimd_server.stats()
    counts = {k: stats[k] for k in ("registrations", "cimd_fetches", "authorizations")}
    assert counts == {"registrations": 0, "cimd_fetches": 1, "authorizations": 1}
    assert stats["last"]["authorize"]["client_id"] == document_url
    code, said = await mcp_bridge_cli(bridge_home, "status", env=oauth_env(), stdout=True)
    assert code == 0, said
    assert f"client {document_url} (cimd)" in said

    # `run` then uses that login without signing in again.
    async with running_bridge(bridge_home, cimd_server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert (await whoami(bridge))["client_id"] == document_url
    assert cimd_server.stats()["authorizations"] == 1

    # Revocation at logout authenticates as the same public client (RFC 7009 §2.1).
    code, said = await mcp_bridge_cli(bridge_home, "logout", cimd_server.mcp_url, env=oauth_env())
    assert code == 0, said
    assert "revoked at the authorization server" in said
    stats = cimd_server.stats()
    assert (stats["revocations"], stats["cimd_fetches"]) == (1, 1)


async def test_a_cimd_login_refreshes_its_tokens_as_the_same_client(
    auth_server: AuthServerFactory,
    tls_files: TlsFiles,
    documents: DocumentServer,
    document_url: str,
    bridge_home: Path,
) -> None:
    server = auth_server(cimd=True, cimd_ca_file=str(tls_files.ca_cert), access_ttl_s=2)
    args = (server.mcp_url, "--client-metadata-url", document_url)
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "first")) == "first"
        await asyncio.sleep(3)  # the access token has expired by now
        assert text_of(await echo(bridge, "after expiry")) == "after expiry"
    stats = server.stats()
    assert stats["refreshes"] >= 1
    assert stats["last"]["token_request"]["grant_type"] == "refresh_token"
    assert stats["last"]["token_request"]["client_id"] == document_url
    # One login, one fetch: the refresh found the document in the AS's cache.
    assert (stats["authorizations"], stats["registrations"], stats["cimd_fetches"]) == (1, 0, 1)


async def test_a_document_naming_another_client_id_is_refused_and_no_code_is_issued(
    cimd_server: AuthServer, documents: DocumentServer, bridge_home: Path, tmp_path: Path
) -> None:
    url = documents.url(DOCUMENT_PATH)
    documents.put_json(DOCUMENT_PATH, client_document("https://impostor.example/client.json"))
    record = tmp_path / "browser.json"
    env = {**oauth_env(), "BROWSER_RECORD": str(record)}
    argv = ("login", cimd_server.mcp_url, "--client-metadata-url", url, "--login-timeout", "8")
    code, said = await mcp_bridge_cli(bridge_home, *argv, env=env)
    assert code == 1, said
    # The AS does not redirect to a client it cannot identify: the login waits, then ends.
    assert "No sign-in arrived within 8 s" in said, said
    stats = cimd_server.stats()
    assert (stats["cimd_rejections"], stats["authorizations"], stats["token_requests"]) == (
        1,
        0,
        0,
    )
    assert "is not its URL" in stats["last"]["cimd"]["refused"]
    # RFC 6749 §4.1.2.1: an unknown client is told off in the browser, never redirected.
    page = json.loads(record.read_text())
    assert page["status"] == 400
    assert "not found" in page["page"]


async def test_run_with_a_pre_registered_public_client_id(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    client = PreRegisteredClient("desktop-app", "http://127.0.0.1/callback")
    server = auth_server(pre_registered=(client,))
    args = (server.mcp_url, "--client-id", "desktop-app")
    async with running_bridge(bridge_home, *args, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "pre-registered")) == "pre-registered"
        assert (await whoami(bridge))["client_id"] == "desktop-app"
    stats = server.stats()
    assert (stats["registrations"], stats["authorizations"]) == (0, 1)
    assert stats["last"]["token_request"]["client_id"] == "desktop-app"
    assert stats["last"]["token_request"]["client_auth"] == "none"


async def test_run_with_a_pre_registered_confidential_client_and_its_secret(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    secret = "made-up-secret-for-the-fixture"
    client = PreRegisteredClient("desktop-app", "http://127.0.0.1/callback", secret)
    server = auth_server(pre_registered=(client,))
    env = {**oauth_env(), "MCP_BRIDGE_CLIENT_SECRET": secret}
    args = (server.mcp_url, "--client-id", "desktop-app")
    async with running_bridge(bridge_home, *args, env=env) as bridge:
        assert "result" in await bridge.initialize()
        assert (await whoami(bridge))["client_id"] == "desktop-app"
    stats = server.stats()
    assert (stats["registrations"], stats["token_exchanges"]) == (0, 1)
    assert stats["last"]["token_request"]["client_auth"] == "basic"  # the AS offers Basic
