"""Credentials that cost nothing until a server asks for them, or a login for it exists.

Most servers a bridge fronts need no authorization, or answer the first unauthorized
request with a 401. So the OAuth machinery (the token manager, its timers) is built when
the server first challenges with a 401 or 403, or as soon as `wants_provider()` says so:
the vault holds a login for the server (used from the first request), or the server's
protected-resource metadata names an authorization server although it never answers 401
(it answers tools with "Unauthorized"). A server that never asks, and has no login, costs
one cheap check per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Protocol

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})

# True when the provider should be built before any challenge; called before requests while
# none is built, so it must be cheap when nothing changed (the registry checks the vault
# file's modification time before reading it, and the metadata once).
ProviderCheck = Callable[[], Awaitable[bool]]


class ClosableProvider(Protocol):
    """remote.base.CredentialProvider (not imported: auth sits below remote), plus aclose."""

    async def headers(self, method: str, url: str) -> Mapping[str, str]: ...

    async def stored_headers(self, method: str, url: str) -> Mapping[str, str]: ...

    def on_dpop_nonce(self, url: str, nonce: str) -> None: ...

    async def on_unauthorized(self, www_authenticate: str | None) -> bool: ...

    async def on_forbidden(self, www_authenticate: str | None) -> bool: ...

    async def on_retry_refused(self, www_authenticate: str | None) -> None: ...

    async def aclose(self) -> None: ...


async def _never() -> bool:
    return False


class OnDemandCredentials:
    """A CredentialProvider that builds the real one (`make()`) when first challenged, or
    when `wants_provider()` says so (see the module docstring)."""

    def __init__(
        self,
        make: Callable[[], ClosableProvider],
        wants_provider: ProviderCheck = _never,
    ) -> None:
        self._make = make
        self._wants_provider = wants_provider
        self._provider: ClosableProvider | None = None

    @property
    def is_built(self) -> bool:
        return self._provider is not None

    async def headers(self, method: str, url: str) -> Mapping[str, str]:
        if self._provider is None and not await self._wants_provider():
            return _NO_HEADERS
        return await self._built().headers(method, url)

    async def stored_headers(self, method: str, url: str) -> Mapping[str, str]:
        """Like `headers()`, but never starts a login (see OAuthCredentials)."""
        if self._provider is None and not await self._wants_provider():
            return _NO_HEADERS
        return await self._built().stored_headers(method, url)

    def on_dpop_nonce(self, url: str, nonce: str) -> None:
        # Built for it: a resource that sends DPoP nonces wants DPoP-bound tokens, and its
        # next answer is most likely the 401 that builds the provider anyway.
        self._built().on_dpop_nonce(url, nonce)

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        return await self._built().on_unauthorized(www_authenticate)

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        return await self._built().on_forbidden(www_authenticate)

    async def on_retry_refused(self, www_authenticate: str | None) -> None:
        if self._provider is not None:
            await self._provider.on_retry_refused(www_authenticate)

    async def aclose(self) -> None:
        if self._provider is not None:
            await self._provider.aclose()

    def _built(self) -> ClosableProvider:
        if self._provider is None:
            self._provider = self._make()
        return self._provider
