"""OpenID Connect ID tokens for the demo authorization server's `id_token_bearer` mode:
compact JWTs (RFC 7519) signed with HS256 under a key only the demo process knows.

The demo's resource server recognises them by looking them up (token_families.py), as it
does access tokens; the signature is there so that what the client receives has the shape
of a real ID token (header.payload.signature, base64url, no padding).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time

__all__ = ["IdTokenMinter"]

DEMO_SUBJECT = "demo-user"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


class IdTokenMinter:
    """Mints ID tokens for one issuer (OpenID Connect Core §2: iss, sub, aud, exp, iat)."""

    def __init__(self, issuer: str) -> None:
        self._issuer = issuer
        self._key = secrets.token_bytes(32)

    def mint(self, client_id: str, ttl_s: float) -> tuple[str, float]:
        """An ID token for `client_id`, valid `ttl_s` seconds, and its exact expiry time."""
        now = time.time()
        expires_at = now + ttl_s
        header = {"alg": "HS256", "typ": "JWT"}
        claims = {
            "iss": self._issuer,
            "sub": DEMO_SUBJECT,
            "aud": client_id,  # an ID token is for the client (Cognito: the app client id)
            "iat": int(now),
            "exp": expires_at,  # a float: the demo's lifetimes are seconds long
            "token_use": "id",  # as Cognito marks its ID tokens
            "jti": secrets.token_urlsafe(8),  # two tokens minted in one second still differ
        }
        signing_input = ".".join(
            _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
        )
        signature = hmac.new(self._key, signing_input.encode("ascii"), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(signature)}", expires_at
