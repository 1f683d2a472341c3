"""The demo authorization server's tokens, by family: every grant starts a family, whose
first access (and refresh) token the grant mints; each refresh rotates both, and a spent
refresh token presented again revokes the whole family (OAuth 2.1 §4.3.1 / RFC 9700
§4.14.2, "refresh token reuse detection"). In `id_token_bearer` mode a grant with `openid`
gets an ID token too (id_tokens.py), which the resource server takes as the bearer.

In memory, and bookkeeping only: which grant may mint what is decided by the SDK provider
(auth_provider.py) and the grants the SDK lacks (machine_grants.py), and what each costs
is counted there.
"""

from __future__ import annotations

import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from mcp.server.auth.provider import AccessToken, RefreshToken, TokenError
from mcp.shared.auth import OAuthToken

from mcp_bridge.demo.auth_modes import OPENID_SCOPE, AuthServerModes
from mcp_bridge.demo.id_tokens import IdTokenMinter

__all__ = ["FamilyAccessToken", "FamilyRefreshToken", "OidcToken", "TokenFamilies"]


class FamilyRefreshToken(RefreshToken):
    family: str
    jkt: str | None = None  # bound to this DPoP key (RFC 9449 §5: a public client's are)


class FamilyAccessToken(AccessToken):
    family: str
    expires_at_exact: float | None = None  # AccessToken.expires_at is whole seconds
    jkt: str | None = None  # cnf.jkt (RFC 9449 §6.1): usable only with this key's proofs


class OidcToken(OAuthToken):
    """A token response with the OpenID Connect `id_token` (the SDK's model has none)."""

    id_token: str | None = None


@dataclass
class TokenFamilies:
    """Every live token of one AS by its value, and the families' history: the refresh
    tokens already spent, the families revoked. `resource_url`: the demo MCP server, the
    audience of its ID tokens."""

    issuer: str
    modes: AuthServerModes
    resource_url: str | None = None
    access: dict[str, FamilyAccessToken] = field(default_factory=dict)
    id_tokens: dict[str, FamilyAccessToken] = field(default_factory=dict)  # id_token_bearer
    refresh: dict[str, FamilyRefreshToken] = field(default_factory=dict)
    spent_refresh: dict[str, str] = field(default_factory=dict)  # token -> family
    revoked: set[str] = field(default_factory=set)
    id_tokens_minter: IdTokenMinter = field(init=False)

    def __post_init__(self) -> None:
        self.id_tokens_minter = IdTokenMinter(self.issuer)

    def clear(self) -> None:
        for table in (self.access, self.id_tokens, self.refresh, self.spent_refresh):
            table.clear()
        self.revoked.clear()

    def live_families(self) -> int:
        return len(
            {t.family for t in self.refresh.values()} | {t.family for t in self.access.values()}
        )

    def access_token(self, token: str) -> FamilyAccessToken | None:
        """The access (or ID) token `token`, while it has not expired."""
        found = self.access.get(token) or self.id_tokens.get(token)
        if found is None:
            return None
        if found.expires_at_exact is not None and found.expires_at_exact <= time.time():
            return None
        return found

    def rotate(self, refresh_token: FamilyRefreshToken, scopes: list[str]) -> OAuthToken:
        """A refresh: `refresh_token` is spent, and its family gets new tokens.
        The SDK handler drops the refresh request's `resource`: the grant's own is kept."""
        if refresh_token.family in self.revoked:
            raise TokenError("invalid_grant", "refresh token revoked")
        del self.refresh[refresh_token.token]
        self.spent_refresh[refresh_token.token] = refresh_token.family
        return self.mint(
            refresh_token.client_id,
            scopes,
            refresh_token.resource,
            family=refresh_token.family,
            refreshing=True,
        )

    def revoke(self, family: str) -> None:
        self.revoked.add(family)
        for table in (self.access, self.refresh, self.id_tokens):
            for token in [t for t, value in table.items() if value.family == family]:
                del table[token]

    def mint(
        self,
        client_id: str,
        scopes: list[str],
        resource: str | None,
        *,
        family: str | None = None,
        with_refresh: bool = True,
        refreshing: bool = False,
    ) -> OAuthToken:
        """New tokens of `family` (a new one when None); a refresh token only when
        `with_refresh` and the modes issue them; an ID token as `_id_token` says
        (`refreshing`: for a refresh grant)."""
        family = family or secrets.token_hex(8)
        now = time.time()
        ttl = self.modes.access_ttl_s
        access = FamilyAccessToken(
            token=secrets.token_urlsafe(32),
            client_id=client_id,
            scopes=scopes,
            expires_at=math.ceil(now + ttl),
            expires_at_exact=now + ttl,
            # `id_token_bearer`: Cognito's access tokens name no audience.
            resource=None if self.modes.id_token_bearer else resource,
            family=family,
        )
        self.access[access.token] = access
        minted: dict[str, Any] = {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": max(1, math.ceil(ttl)),
            "scope": " ".join(scopes),
            "id_token": self._id_token(client_id, scopes, family, refreshing=refreshing),
        }
        if with_refresh and self.modes.issue_refresh_tokens:
            refresh_ttl = self.modes.refresh_ttl_s
            refresh = FamilyRefreshToken(
                token=secrets.token_urlsafe(32),
                client_id=client_id,
                scopes=scopes,
                expires_at=None if refresh_ttl is None else math.ceil(now + refresh_ttl),
                resource=resource,
                family=family,
            )
            self.refresh[refresh.token] = refresh
            minted["refresh_token"] = refresh.token
        return OidcToken(**minted)

    def _id_token(
        self, client_id: str, scopes: list[str], family: str, *, refreshing: bool
    ) -> str | None:
        """`id_token_bearer`: an ID token for a grant with `openid` (OpenID Connect Core
        §3.1.3.3), the one bearer the RS takes; bound to the demo MCP server as its API."""
        modes = self.modes
        if not modes.id_token_bearer or OPENID_SCOPE not in scopes:
            return None
        if refreshing and not modes.id_token_on_refresh:
            return None
        ttl = modes.id_token_ttl_s if modes.id_token_ttl_s is not None else modes.access_ttl_s
        token, expires_at = self.id_tokens_minter.mint(client_id, ttl)
        self.id_tokens[token] = FamilyAccessToken(
            token=token,
            client_id=client_id,
            scopes=scopes,
            expires_at=math.ceil(expires_at),
            expires_at_exact=expires_at,
            resource=self.resource_url,
            family=family,
        )
        return token
