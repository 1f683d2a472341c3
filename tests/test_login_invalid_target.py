"""An authorization server that refuses the RFC 8707 resource (Microsoft Entra ID answers
`invalid_target` to any resource but its app's ID URI): the login asks once more without
it, remembers that per issuer, and refreshes leave it out too."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import echo, mcp_bridge_cli, oauth_env, running_bridge
from tests.fixtures.mcp_servers import text_of

ACCESS_TTL_S = 2.0


async def test_a_login_refused_for_its_resource_signs_in_without_it_and_remembers(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(rejects_resource=True, access_ttl_s=ACCESS_TTL_S)
    code, said = await mcp_bridge_cli(bridge_home, "login", server.mcp_url, env=oauth_env())
    assert code == 0, said
    stats = server.stats()
    assert (stats["authorize_requests"], stats["authorizations"]) == (2, 1)
    assert stats["last"]["authorize"].get("resource") is None
    # The next process starts without it, and its refreshes leave it out as well.
    async with running_bridge(bridge_home, "--no-daemon", server.mcp_url, env=oauth_env()) as b:
        assert "result" in await b.initialize()
        assert text_of(await echo(b, "first")) == "first"
        await asyncio.sleep(ACCESS_TTL_S + 0.5)
        assert text_of(await echo(b, "after a refresh")) == "after a refresh"
    after = server.stats()
    assert after["refreshes"] >= 1
    assert after["authorize_requests"] == 2  # no new sign-in, no new refusal
    assert after["resource_refusals"] == stats["resource_refusals"]
