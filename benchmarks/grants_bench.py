"""Figures for the grants without a browser (docs/grants.md), side by side in one run.
From the repository root: `python -m benchmarks.grants_bench [--grants N]`.

1. one client assertion (RFC 7523: claims, signature, encoding), ES256 against RS256;
2. a first grant (discovery, then the grant) and a renewal (the grant alone, as the token
   manager makes it), against the demo AS on 127.0.0.1: client credentials with a secret,
   with a P-256 key, and enterprise-managed authorization (the IdP's token exchange, then
   the JWT bearer grant).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from mcp_bridge.auth.client_assertion import ClientAssertions
from mcp_bridge.auth.jws import SigningKey
from mcp_bridge.auth.machine_login import MachineLogin
from mcp_bridge.auth.settings import Grant, OAuthSettings
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.demo.auth_modes import AuthServerModes, ServiceClient
from tests.fixtures.auth_server import AuthServer
from tests.fixtures.grant_keys import make_client_key, pem_of
from tests.fixtures.oauth_client import NoClients

ASSERTIONS = 2000
SECRET = "bench-secret"


def assertion_us(private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> float:
    assertions = ClientAssertions(SigningKey.from_pem(pem_of(private), source="bench"))
    started = time.perf_counter()
    for _ in range(ASSERTIONS):
        assertions.assertion("bench-client", "https://as.example.com")
    return (time.perf_counter() - started) * 1e6 / ASSERTIONS


async def grant_ms(
    server: AuthServer, settings: OAuthSettings, http: aiohttp.ClientSession, grants: int
) -> tuple[list[float], list[float]]:
    """(first grants, renewals) in ms."""
    firsts: list[float] = []
    renewals: list[float] = []
    for _ in range(grants):
        login = MachineLogin(
            server.mcp_url,
            settings,
            NoClients(),
            policy=UrlPolicy.for_server(server.mcp_url),
            http=lambda: http,
        )
        started = time.perf_counter()
        result = await login.run()
        firsts.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        await login.renew(result.context, result.client, result.tokens)
        renewals.append((time.perf_counter() - started) * 1000)
    return firsts, renewals


def median(values: list[float]) -> str:
    return f"{statistics.median(values):.1f}"


async def main_async(grants: int) -> None:
    out = sys.stdout
    es256 = assertion_us(ec.generate_private_key(ec.SECP256R1()))
    rs256 = assertion_us(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    out.write(
        f"one client assertion: ES256 {es256:.0f} us, RS256 {rs256:.0f} us, "
        f"ratio {rs256 / es256:.2f} ({ASSERTIONS} each)\n"
    )
    with tempfile.TemporaryDirectory(prefix="grants-bench-") as directory:
        home = Path(directory)
        key = make_client_key(home)
        client = ServiceClient("bench", client_secret=SECRET)
        modes = AuthServerModes(
            service_clients=(client, key.service_client("bench-key")),
            idp=True,
            idp_clients=(client,),
        )
        server = AuthServer.start(modes, home)
        try:
            id_token_file = home / "id-token"
            id_token_file.write_text(server.id_token("alice", "bench"))
            kinds = {
                "client credentials, secret": OAuthSettings(
                    grant=Grant.CLIENT_CREDENTIALS, client_id="bench", client_secret=SECRET
                ),
                "client credentials, P-256 key": OAuthSettings(
                    grant=Grant.CLIENT_CREDENTIALS,
                    client_id="bench-key",
                    client_key_file=str(key.path),
                ),
                "enterprise (exchange + JWT bearer)": OAuthSettings(
                    grant=Grant.ENTERPRISE,
                    client_id="bench",
                    client_secret=SECRET,
                    idp_issuer=server.idp_issuer,
                    idp_client_id="bench",
                    idp_client_secret=SECRET,
                    id_token_file=str(id_token_file),
                ),
            }
            async with aiohttp.ClientSession() as http:
                for name, settings in kinds.items():
                    await grant_ms(server, settings, http, 1)  # warm-up
                    firsts, renewals = await grant_ms(server, settings, http, grants)
                    out.write(
                        f"{name}: first grant (with discovery) median {median(firsts)} ms, "
                        f"renewal median {median(renewals)} ms, n={grants}\n"
                    )
        finally:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grants", type=int, default=20)
    args = parser.parse_args()
    asyncio.run(main_async(args.grants))


if __name__ == "__main__":
    main()
