"""`private_key_jwt` client authentication (RFC 7523 §2.2, §3; OIDC Core §9): instead of a
secret, each request to an authorization server carries a JWT the client signed with its
private key, whose public half the server holds.

The claims: `iss` and `sub` are the client id; `aud` is the authorization server's issuer
identifier, one string, as draft-ietf-oauth-rfc7523bis requires (RFC 7523 let the token
endpoint URL serve too, and an assertion that names a URL the attacker chose can be
replayed at another server); `jti` is new for every request, so a server that refuses a
`jti` it has seen (RFC 7523 §3, item 7) never refuses a retry of ours; `iat` now and `exp`
a minute on. The MCP client-credentials extension names this method as the one it
recommends.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from mcp_bridge.auth.jws import SigningKey, sign_jwt

__all__ = ["ASSERTION_LIFETIME_S", "CLIENT_ASSERTION_TYPE", "ClientAssertions"]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
# Long enough for a slow request and a little clock skew, short enough that a stolen
# assertion is soon worthless; servers commonly refuse lifetimes past a few minutes.
ASSERTION_LIFETIME_S = 60
_JTI_BYTES = 16  # 128 random bits: unique without a counter


@dataclass(frozen=True, slots=True)
class ClientAssertions:
    """Signs a fresh client assertion for each request (`assertion`). The clock is the
    only thing read here besides the key; tests pass their own."""

    key: SigningKey
    clock: Callable[[], float] = field(default=time.time, compare=False, repr=False)

    def assertion(self, client_id: str, audience: str) -> str:
        """The `client_assertion` value for `client_id` at the server whose issuer
        identifier is `audience`."""
        now = int(self.clock())
        claims = {
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "jti": secrets.token_urlsafe(_JTI_BYTES),
            "iat": now,
            "exp": now + ASSERTION_LIFETIME_S,
        }
        return sign_jwt(self.key, claims)
