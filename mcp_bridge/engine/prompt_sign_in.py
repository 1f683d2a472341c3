"""PromptSignIn: the credential provider of one session whose client shows a sign-in URL
itself: as a URL-mode elicitation round (2026-07-28 MRTR, engine/sign_in_rounds.py), or as
error -32042 (a 2025-11-25 client that declared URL elicitation). The I/O edge of both: a
request whose client will be handed the URL (FrontChannel.hands_sign_in_url), and meets a
login, is answered as soon as the login's authorization URL is known, instead of after the
whole `--login-wait`.

Why then: from that moment only the user can move the login on. Holding the request longer
spends the host's deadline for the call (60 s on the strictest hosts) and shows nothing,
while the client that is handed the URL can show it in its own dialog at once. The login
carries on (the provider's single flight). The client's retry, which answers the
elicitation, holds that URL already (`sign_in_url_held`): it waits for that login, up to
`--login-wait` (a login still unfinished then gets another round), and is handed only
another login's URL at once, such as the next one's after the user refused this one. (A
2025-11-25 client's retry is a request like any other: while the login waits, it is
handed the URL again at once.)

A server that never answers 401 but names an authorization server in its metadata has its
login started by a request with no token to send (auth/provider.py `sign_in_unasked`), from
its headers rather than from a challenge: that request is answered the same way.

Such a request also tells the server's login that its client will show the URL
(`client_waits`, then `client_done` with what it handed over): the client opens the URL
itself, so the login opens no browser tab of its own for it (auth/url_showing.py).

Every other request, and every request of other clients, goes to the shared provider as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Mapping
from typing import Any, Protocol, TypeVar

from mcp_bridge.auth.errors import LoginRequired
from mcp_bridge.auth.on_demand import OnDemandCredentials
from mcp_bridge.auth.url_showing import CLIENT_SHOWS_URL
from mcp_bridge.bridge.session import ROUTED_REQUEST
from mcp_bridge.jsonrpc import RequestId

__all__ = ["ClientSignIn", "PromptSignIn", "ServerSignIn"]

T = TypeVar("T")


class ServerSignIn(Protocol):
    """The server's logins, as a session that hands their URL to its client sees them
    (auth/provider.py's OAuthCredentials)."""

    async def sign_in_url_shown(self, other_than: str | None = None) -> tuple[str, str]:
        """The URL of the login waiting for the user (at once when one does), and what to
        tell the user to do there; `other_than` (a URL the client holds) does not count."""
        ...

    def client_waits(self) -> None: ...

    def client_done(self, handed: str | None) -> None: ...

    @property
    def signs_in_unasked(self) -> bool:
        """A request with no token to send starts a login (the server never challenges)."""
        ...


class ClientSignIn(Protocol):
    """Which requests of the session's client are handed a sign-in URL, and which URL the
    client holds already (engine/front_channel.py's FrontChannel)."""

    def hands_sign_in_url(self, request_id: RequestId) -> bool: ...

    def sign_in_url_held(self, request_id: RequestId) -> str | None: ...


class PromptSignIn:
    """A CredentialProvider over the server's shared one (see the module docstring).
    `sign_in()`: the server's logins, asked for only once a request meets one."""

    def __init__(
        self,
        inner: OnDemandCredentials,
        client: ClientSignIn,
        sign_in: Callable[[], ServerSignIn],
        *,
        server: str,
    ) -> None:
        self._inner = inner
        self._client = client
        self._sign_in = sign_in
        self._server = server

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        request_id = ROUTED_REQUEST.get()
        if request_id is None or not self._client.hands_sign_in_url(request_id):
            return await self._inner.headers(method, url)
        # A token held goes as it is; only a request with none to send, to a server that
        # never challenges, starts a login here (where a 401 would, for any other server).
        stored = await self._inner.stored_headers(method, url)
        if stored or not self._inner.is_built or not self._sign_in().signs_in_unasked:
            return stored
        return await self._answered_early(request_id, self._inner.headers(method, url))

    def on_dpop_nonce(self, url: str, nonce: str) -> None:
        self._inner.on_dpop_nonce(url, nonce)

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        return await self._recover(self._inner.on_unauthorized(www_authenticate))

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        return await self._recover(self._inner.on_forbidden(www_authenticate))

    async def on_retry_refused(self, www_authenticate: str | None) -> None:
        await self._inner.on_retry_refused(www_authenticate)

    async def _recover(self, recovery: Coroutine[Any, Any, bool]) -> bool:
        request_id = ROUTED_REQUEST.get()
        if request_id is None or not self._client.hands_sign_in_url(request_id):
            return await recovery
        return await self._answered_early(request_id, recovery)

    async def _answered_early(self, request_id: RequestId, recovery: Coroutine[Any, Any, T]) -> T:
        """`recovery`'s result, or LoginRequired with the URL for the client as soon as a
        login it needs has one (the login goes on): for a request that hands it over."""
        held = self._client.sign_in_url_held(request_id)
        try:
            sign_in = self._sign_in()
        except BaseException:
            recovery.close()
            raise
        # Said before the recovery can start a login: its URL must not find our tab due.
        sign_in.client_waits()
        handed: str | None = None
        try:
            attempt = asyncio.ensure_future(_client_shows_url(recovery))
            shown = asyncio.ensure_future(sign_in.sign_in_url_shown(other_than=held))
            try:
                await asyncio.wait((attempt, shown), return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (attempt, shown):
                    if not task.done():
                        task.cancel()  # the login itself is shielded: it carries on
                await asyncio.gather(attempt, shown, return_exceptions=True)
            if attempt.done() and not attempt.cancelled():
                failure = attempt.exception()
                if isinstance(failure, LoginRequired) and failure.sign_in_url is not None:
                    # The login wait ran out (`shown` may have seen the URL in the same
                    # turn): the URL still waiting is handed over, even the one the
                    # client holds, as a new round.
                    handed = failure.sign_in_url
                return attempt.result()  # a refresh did it, or the login ended first
            handed, what_to_do = shown.result()
            # The front channel makes this the client's round or -32042 (hands_url said so).
            # An opening the front answered from the cache has its reply dropped; the request
            # it went ahead of meets this URL next and hands it over.
            raise LoginRequired(
                f"Sign in to {self._server} to continue",
                next_step=f"{what_to_do}, then retry",
                sign_in_url=handed,
            )
        finally:
            sign_in.client_done(handed)


async def _client_shows_url(recovery: Coroutine[Any, Any, T]) -> T:
    """`recovery`, told that this request's session hands the URL to its client (run as a
    task of its own, so the mark stays in it)."""
    CLIENT_SHOWS_URL.set(True)
    return await recovery
