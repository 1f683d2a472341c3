"""Auth challenges on the Streamable HTTP transport, from a server whose handler each test
sets: a 401 or 403 retried once with the provider's new headers, a refusal for good that is an
error and not a loop, and the provider's explanation of a refusal."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from mcp_bridge.errors import AuthError, RemoteError
from mcp_bridge.protocol import TransportKind
from mcp_bridge.remote.detect import ConnectOptions, connect
from tests.fixtures.fault_server import FaultServer
from tests.fixtures.hostile_server import LIST, ok, started
from tests.fixtures.mcp_servers import Inbox


@dataclass
class ScriptedCredentials:
    """A CredentialProvider whose token changes when it is told about a 401 or 403."""

    token: str = "old"
    recover: bool = True
    challenges: list[tuple[int, str | None]] = field(default_factory=list)
    explanation: str | None = None  # what on_retry_refused raises, if anything

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def on_dpop_nonce(self, url: str, nonce: str) -> None:
        return None

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        self.challenges.append((401, www_authenticate))
        self.token = "new"
        return self.recover

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        self.challenges.append((403, www_authenticate))
        self.token = "stepped-up"
        return self.recover

    async def on_retry_refused(self, www_authenticate: str | None) -> None:
        self.challenges.append((-401, www_authenticate))
        if self.explanation is not None:
            raise AuthError(self.explanation, next_step="Change a flag")


@pytest.mark.parametrize(
    ("status", "good_token"), [(401, "Bearer new"), (403, "Bearer stepped-up")]
)
async def test_auth_challenge_is_retried_once_with_new_headers(
    fault_server: FaultServer, inbox: Inbox, status: int, good_token: str
) -> None:
    challenge = 'Bearer resource_metadata="http://x/.well-known/oauth-protected-resource"'

    async def guarded(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        if request.headers.get("Authorization") != good_token:
            return web.Response(status=status, headers={"WWW-Authenticate": challenge})
        return ok(body)

    fault_server.handler = guarded
    credentials = ScriptedCredentials()
    async with started(
        fault_server, inbox, credentials=credentials, static_headers={"X-Team": "blue"}
    ) as transport:
        await transport.send(LIST)
        assert "result" in await inbox.response(1)
        assert credentials.challenges == [(status, challenge)]
        assert [h["Authorization"] for _, h, _ in fault_server.seen] == ["Bearer old", good_token]
        assert {h["X-Team"] for _, h, _ in fault_server.seen} == {"blue"}


INVALID_TOKEN = 'Bearer error="invalid_token"'


async def always_401(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
    return web.Response(status=401, headers={"WWW-Authenticate": INVALID_TOKEN})


async def test_auth_refused_for_good_is_an_error_not_a_loop(
    fault_server: FaultServer, inbox: Inbox
) -> None:
    fault_server.handler = always_401
    credentials = ScriptedCredentials(recover=True)
    async with started(fault_server, inbox, credentials=credentials) as transport:
        await transport.send(LIST)
        error = (await inbox.response(1))["error"]
        assert "401" in error["message"]
        assert len(fault_server.seen) == 2  # the original and the one retry
        assert credentials.challenges == [(401, INVALID_TOKEN), (-401, INVALID_TOKEN)]


@pytest.mark.parametrize(
    ("recover", "explained"),
    [pytest.param(True, True, id="after its retry"), pytest.param(False, False, id="no retry")],
)
async def test_the_provider_explains_a_401_only_to_the_retry_it_asked_for(
    fault_server: FaultServer, inbox: Inbox, recover: bool, explained: bool
) -> None:
    fault_server.handler = always_401
    credentials = ScriptedCredentials(recover=recover, explanation="That token is the wrong kind")
    async with started(fault_server, inbox, credentials=credentials) as transport:
        await transport.send(LIST)
        error = (await inbox.response(1))["error"]
    assert ("That token is the wrong kind" in error["message"]) is explained
    assert len(fault_server.seen) == 1 + recover  # told, never retried a second time


async def test_connect_names_an_authorization_refusal(fault_server: FaultServer) -> None:
    async def locked(request: web.Request, body: dict[str, Any]) -> web.StreamResponse:
        return web.Response(status=401, headers={"WWW-Authenticate": 'Bearer scope="mcp"'})

    fault_server.handler = locked
    credentials = ScriptedCredentials(recover=False)
    options = ConnectOptions(credentials=credentials)
    with pytest.raises(RemoteError, match="requires authorization"):
        await connect(fault_server.url, TransportKind.AUTO, Inbox().deliver, options=options)
    assert credentials.challenges == [(401, 'Bearer scope="mcp"')]
