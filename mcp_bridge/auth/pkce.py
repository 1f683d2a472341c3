"""PKCE with S256 (RFC 7636, OAuth 2.1 §7.5.2; MCP Authorization Security
Considerations, "Authorization Code Protection").

Pure apart from the OS random source. The spec makes PKCE the client's job to verify:
an authorization server whose metadata does not list S256 is refused before any browser
opens (the MCP Python SDK skips this check, docs/sdk-gaps.md #5).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field

from mcp_bridge.auth.errors import AuthError
from mcp_bridge.auth.metadata import AuthServerMetadata

__all__ = ["PkcePair", "require_s256", "s256_challenge"]

# 64 random bytes -> 86 base64url characters, inside RFC 7636 §4.1's 43..128.
_VERIFIER_BYTES = 64


def s256_challenge(verifier: str) -> str:
    """BASE64URL(SHA256(ASCII(verifier))) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True, slots=True)
class PkcePair:
    """A code verifier (secret until the token request) and its S256 challenge."""

    verifier: str = field(repr=False)
    challenge: str

    @classmethod
    def generate(cls) -> PkcePair:
        verifier = secrets.token_urlsafe(_VERIFIER_BYTES)
        return cls(verifier, s256_challenge(verifier))


def require_s256(metadata: AuthServerMetadata) -> None:
    """Raise AuthError unless the AS lists S256 in `code_challenge_methods_supported`
    (MCP: absent means the client MUST refuse; `plain` alone is not enough)."""
    methods = metadata.code_challenge_methods_supported
    if "S256" in methods:
        return
    why = (
        "does not advertise PKCE support (no code_challenge_methods_supported)"
        if not methods
        else f"supports only PKCE methods {', '.join(methods)}, not S256"
    )
    raise AuthError(
        f"The authorization server {metadata.issuer} {why}; logging in without it is unsafe",
        next_step="Ask the server's owner to enable PKCE S256",
    )
