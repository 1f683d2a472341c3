"""The bridge on real networks: https with a private CA trusted the way the OS trusts one
(truststore reads OpenSSL's default paths, which SSL_CERT_FILE moves), and a real HTTP proxy
(tinyproxy) taken from HTTP_PROXY / HTTPS_PROXY and skipped for NO_PROXY hosts."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.bridge_process import echo, running_bridge
from tests.fixtures.http_proxy import Proxy
from tests.fixtures.mcp_servers import ServerProcess, text_of
from tests.fixtures.tls_server import TlsServer, make_ca_and_leaf


async def test_https_with_a_ca_the_system_trusts(tls_server: TlsServer, bridge_home: Path) -> None:
    env = {"SSL_CERT_FILE": str(tls_server.files.ca_cert)}
    async with running_bridge(bridge_home, tls_server.url, env=env) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "over tls")) == "over tls"


async def test_https_with_an_untrusted_certificate_is_refused_clearly(
    tls_server: TlsServer, bridge_home: Path, tmp_path: Path
) -> None:
    other_ca = make_ca_and_leaf(tmp_path).ca_cert  # trusts some CA, not the server's
    async with running_bridge(
        bridge_home, tls_server.url, env={"SSL_CERT_FILE": str(other_ca)}
    ) as bridge:
        refused = await bridge.initialize()
        message = refused["error"]["message"]
        assert tls_server.url in message
        assert "certificate" in message.lower()
        assert bridge.process.returncode is None


async def test_http_proxy_from_the_environment_carries_the_traffic(
    tinyproxy: Proxy, sdk_stateless: ServerProcess, bridge_home: Path
) -> None:
    env = {"HTTP_PROXY": tinyproxy.url}
    async with running_bridge(bridge_home, sdk_stateless.url, env=env) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "proxied")) == "proxied"
    assert f"127.0.0.1:{sdk_stateless.port}/mcp" in tinyproxy.requests_seen()


async def test_no_proxy_hosts_bypass_the_proxy(
    tinyproxy: Proxy, sdk_stateless: ServerProcess, bridge_home: Path
) -> None:
    env = {"HTTP_PROXY": tinyproxy.url, "NO_PROXY": "127.0.0.1"}
    async with running_bridge(bridge_home, sdk_stateless.url, env=env) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "direct")) == "direct"
    assert f"127.0.0.1:{sdk_stateless.port}" not in tinyproxy.requests_seen()


async def test_https_through_a_connect_proxy(
    tinyproxy: Proxy, tls_server: TlsServer, bridge_home: Path
) -> None:
    env = {"HTTPS_PROXY": tinyproxy.url, "SSL_CERT_FILE": str(tls_server.files.ca_cert)}
    async with running_bridge(bridge_home, tls_server.url, env=env) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "tunnelled")) == "tunnelled"
    assert f"CONNECT 127.0.0.1:{tls_server.port}" in tinyproxy.requests_seen()
