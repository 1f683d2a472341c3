"""PromptSignIn: the credential provider of one session whose client takes a sign-in as a
URL-mode elicitation round (2026-07-28 MRTR, engine/sign_in_rounds.py). The I/O edge of
those rounds: a request that may get a round, and meets a login, is answered as soon as the
login's authorization URL is known, instead of after the whole `--login-wait`.

Why then: from that moment only the user can move the login on. Holding the request longer
spends the host's deadline for the call (60 s on the strictest hosts) and shows nothing,
while the client that is handed the URL can show it in its own dialog at once. The login
carries on (the provider's single flight), and the client's retry, which answers the
elicitation, waits for it the usual way, up to `--login-wait`; a login still unfinished
then gets another round.

Every other request, and every request of other clients, goes to the shared provider as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from mcp_bridge.auth.errors import LoginRequired
from mcp_bridge.auth.on_demand import OnDemandCredentials
from mcp_bridge.bridge.session import ROUTED_REQUEST
from mcp_bridge.engine.sign_in_rounds import SignInRounds

__all__ = ["PromptSignIn"]


class PromptSignIn:
    """A CredentialProvider over the server's shared one (see the module docstring).
    `url_shown()`: the URL of the server's login once one waits for the user (at once
    when one does), and what to tell the user to do there."""

    def __init__(
        self,
        inner: OnDemandCredentials,
        rounds: SignInRounds,
        url_shown: Callable[[], Awaitable[tuple[str, str]]],
        *,
        server: str,
    ) -> None:
        self._inner = inner
        self._rounds = rounds
        self._url_shown = url_shown
        self._server = server

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        return await self._inner.headers(method, url)

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
        if request_id is None or not self._rounds.answers_early(request_id):
            return await recovery
        attempt = asyncio.ensure_future(recovery)
        shown = asyncio.ensure_future(self._url_shown())
        try:
            await asyncio.wait((attempt, shown), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (attempt, shown):
                if not task.done():
                    task.cancel()  # the login itself is shielded: it carries on
            await asyncio.gather(attempt, shown, return_exceptions=True)
        if attempt.done() and not attempt.cancelled():
            return attempt.result()  # a refresh did it, or the login ended first
        url, what_to_do = shown.result()
        raise LoginRequired(
            f"Sign in to {self._server} to continue",
            next_step=f"{what_to_do}, then retry",
            sign_in_url=url,
        )
