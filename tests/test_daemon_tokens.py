"""The daemon as the one owner of every token: it refreshes ahead of expiry, for every
shim at once and with no client connected, so no request ever carries an expired token."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from tests.fixtures.auth_server import AuthServerFactory
from tests.fixtures.bridge_process import (
    BridgeProcess,
    bridges_of,
    echo,
    mcp_bridge_cli,
    mcp_bridge_json,
    oauth_env,
    running_bridge,
)
from tests.fixtures.mcp_servers import text_of

ACCESS_TTL_S = 2.0
SHIMS = 10
SOAK_S = 60.0  # the issue asks for a minute


async def test_tokens_stay_fresh_with_no_client_connected(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(access_ttl_s=ACCESS_TTL_S)
    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "signed in")) == "signed in"
        assert await bridge.close_stdin_and_wait() == 0
        before = server.stats()
        await asyncio.sleep(3 * ACCESS_TTL_S)  # no client: only the daemon is left
        idle = server.stats()
        assert idle["refreshes"] - before["refreshes"] >= 2
        report = await mcp_bridge_json(bridge_home, "status", "--json", env=oauth_env())
        assert report["daemon"]["running"] is True
        (login,) = report["logins"]
        assert login["refresh"]["refreshes"] >= 2  # the daemon's own count, no client
        assert login["tokens"]["refreshable"] is True
        assert "access_token" not in json.dumps(report)
    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "still fresh")) == "still fresh"
    after = server.stats()
    assert after["unauthorized"] == idle["unauthorized"]  # the token it sent was valid
    assert (after["authorizations"], after["reuse_detections"]) == (1, 0)


async def test_ten_shims_share_one_refresh_per_expiry_and_never_meet_a_401(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(access_ttl_s=ACCESS_TTL_S)
    async with bridges_of(bridge_home, server.mcp_url, count=SHIMS) as bridges:
        assert all("result" in reply for reply in await all_initialize(bridges))
        signed_in = server.stats()
        started = time.monotonic()
        results = await asyncio.gather(*(keep_calling(bridge, SOAK_S) for bridge in bridges))
        elapsed_s = time.monotonic() - started
    stats = server.stats()
    calls = [reply for replies in results for reply in replies]
    assert calls
    assert [reply for reply in calls if "error" in reply or is_tool_error(reply)] == []
    assert stats["unauthorized"] == signed_in["unauthorized"]  # not one after the login
    assert (stats["authorizations"], stats["reuse_detections"]) == (1, 0)
    refreshes = stats["refreshes"] - signed_in["refreshes"]
    # One refresh per token lifetime (each ahead of expiry), whatever the number of shims.
    assert elapsed_s / ACCESS_TTL_S - 2 <= refreshes <= elapsed_s / (0.8 * ACCESS_TTL_S) + 2


def is_tool_error(reply: dict[str, object]) -> bool:
    result = reply.get("result")
    return isinstance(result, dict) and result.get("isError") is True


async def all_initialize(bridges: list[BridgeProcess]) -> list[dict[str, object]]:
    return list(await asyncio.gather(*(bridge.initialize() for bridge in bridges)))


async def keep_calling(bridge: BridgeProcess, seconds: float) -> list[dict[str, object]]:
    replies: list[dict[str, object]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        replies.append(await echo(bridge, "soak"))
        await asyncio.sleep(0.05)
    return replies


async def test_a_dead_grant_shows_in_status_and_the_next_call_signs_in_again(
    auth_server: AuthServerFactory, bridge_home: Path
) -> None:
    server = auth_server(access_ttl_s=ACCESS_TTL_S)
    async with running_bridge(bridge_home, server.mcp_url, env=oauth_env()) as bridge:
        assert "result" in await bridge.initialize()
        assert text_of(await echo(bridge, "signed in")) == "signed in"
        server.reset()  # the AS forgets every grant: the next refresh meets invalid_grant
        await asyncio.sleep(2 * ACCESS_TTL_S)  # the daemon's refresh-ahead finds out
        code, said = await mcp_bridge_cli(bridge_home, "status", env=oauth_env(), stdout=True)
        assert code == 0
        assert "no tokens: log in again" in said
        assert text_of(await echo(bridge, "again")) == "again"  # one new sign-in
    assert server.stats()["authorizations"] == 1  # counted since the reset
