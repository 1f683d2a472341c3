"""Credentials that cost nothing until a server asks for them, or a login for it exists.

Most servers a bridge fronts need no authorization, or answer the first unauthorized
request with a 401. So the OAuth machinery (the token manager, its timers) is built when
the server first challenges with a 401 or 403, or as soon as the vault is seen to hold a
login for it: a stored login is used from the first request, also for servers that publish
protected-resource metadata but never answer 401 (they answer tools with "Unauthorized").
A server that never asks, and has no login, costs one cheap check per request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from types import MappingProxyType
from typing import Protocol

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})

# True when the vault holds a login for this server; called before requests while no
# provider is built, so it must be cheap when nothing changed (the registry checks the
# vault file's modification time before reading it).
StoredLoginCheck = Callable[[], Awaitable[bool]]


class ClosableProvider(Protocol):
    """remote.base.CredentialProvider (not imported: auth sits below remote), plus aclose."""

    async def headers(self) -> Mapping[str, str]: ...

    async def on_unauthorized(self, www_authenticate: str | None) -> bool: ...

    async def on_forbidden(self, www_authenticate: str | None) -> bool: ...

    async def aclose(self) -> None: ...


async def _no_stored_login() -> bool:
    return False


class OnDemandCredentials:
    """A CredentialProvider that builds the real one (`make()`) when first challenged, or
    when `has_stored_login()` says the vault holds a login for the server."""

    def __init__(
        self,
        make: Callable[[], ClosableProvider],
        has_stored_login: StoredLoginCheck = _no_stored_login,
    ) -> None:
        self._make = make
        self._has_stored_login = has_stored_login
        self._provider: ClosableProvider | None = None

    @property
    def is_built(self) -> bool:
        return self._provider is not None

    async def headers(self) -> Mapping[str, str]:
        if self._provider is None:
            if not await self._has_stored_login():
                return _NO_HEADERS
            self._built()
        assert self._provider is not None
        return await self._provider.headers()

    async def on_unauthorized(self, www_authenticate: str | None) -> bool:
        return await self._built().on_unauthorized(www_authenticate)

    async def on_forbidden(self, www_authenticate: str | None) -> bool:
        return await self._built().on_forbidden(www_authenticate)

    async def aclose(self) -> None:
        if self._provider is not None:
            await self._provider.aclose()

    def _built(self) -> ClosableProvider:
        if self._provider is None:
            self._provider = self._make()
        return self._provider
