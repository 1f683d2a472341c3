"""Credentials that cost nothing until a server asks for them.

Most servers a bridge fronts either need no authorization or answer the first unauthorized
request with a 401. So the OAuth machinery (the vault, the keyring, the token manager) is
built on the first 401 or 403, not at start: a server that never asks never touches the
keyring, and its requests carry no per-call credential work at all. A server with a stored
login pays one 401 round trip per process start, after which the stored tokens are used
(no browser).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Protocol

_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class ClosableProvider(Protocol):
    """remote.base.CredentialProvider (not imported: auth sits below remote), plus aclose."""

    async def headers(self) -> Mapping[str, str]: ...

    async def on_unauthorized(self, www_authenticate: str | None) -> bool: ...

    async def on_forbidden(self, www_authenticate: str | None) -> bool: ...

    async def aclose(self) -> None: ...


class OnDemandCredentials:
    """A CredentialProvider that builds the real one (`make()`) when first challenged."""

    def __init__(self, make: Callable[[], ClosableProvider]) -> None:
        self._make = make
        self._provider: ClosableProvider | None = None

    async def headers(self) -> Mapping[str, str]:
        if self._provider is None:
            return _NO_HEADERS
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
