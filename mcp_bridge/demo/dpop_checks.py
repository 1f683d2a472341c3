"""How the demo servers check a DPoP proof (RFC 9449 §4.3), written apart from the client's
builder (auth/dpop.py) so that each tests the other: the signature is verified by PyJWT
(the SDK's own dependency) against the `jwk` in the proof's header, and every claim by the
rules below. A refusal says in words what was wrong; the edges (dpop_edge.py) turn it
into the RFC's error answers.

Checked, in order: one proof; a JWS whose header says `typ: dpop+jwt`, `alg: ES256` and
carries a public (never a private) P-256 `jwk`; the signature; `jti`, `htm`, `htu`, `iat`
present; `htm` and `htu` are this request's; `iat` within the window; the `jti` not seen
before inside it; the server's nonce when it wants one; at the resource, `ath` is the
hash of the access token. The result is the key's RFC 7638 thumbprint, for `cnf.jkt`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import jwt

__all__ = ["DpopRefused", "NonceIssuer", "ProofVerifier", "RequestFacts"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class DpopRefused(Exception):
    """A proof that fails a check. `error`: `invalid_dpop_proof`, or `use_dpop_nonce` when
    only the server's nonce is missing or stale (RFC 9449 §8, §9)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


def _thumbprint(jwk_doc: Mapping[str, Any]) -> str:
    required = {k: jwk_doc[k] for k in ("crv", "kty", "x", "y")}
    members = json.dumps(required, sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(members.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def _same_target(a: str, b: str) -> bool:
    """RFC 9449 §4.3 step 9: the URIs compared after syntax- and scheme-based
    normalization, query and fragment left out."""

    def normal(url: str) -> tuple[str, str, int | None, str]:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        port = parts.port or _DEFAULT_PORTS.get(scheme)
        return scheme, (parts.hostname or "").lower(), port, parts.path or "/"

    try:
        return normal(a) == normal(b)
    except ValueError:  # a port that is no number
        return False


@dataclass
class NonceIssuer:
    """The one nonce a server accepts now; `rotate()` replaces it."""

    current: str = field(default_factory=lambda: secrets.token_urlsafe(16))

    def rotate(self) -> str:
        self.current = secrets.token_urlsafe(16)
        return self.current


@dataclass(frozen=True)
class RequestFacts:
    """What a proof must match: the request's method and URL, and at the resource the
    access token it came with."""

    method: str
    url: str
    access_token: str | None = None


@dataclass
class ProofVerifier:
    """One server's checks; `nonces` set: it demands its nonce. Remembers the `jti` of
    every proof it accepted within the window (replays are refused)."""

    window_s: float = 300.0
    nonces: NonceIssuer | None = None
    seen_jtis: dict[str, float] = field(default_factory=dict)

    def verify(self, proofs: list[str], facts: RequestFacts, now: float) -> str:
        """The thumbprint of the key that signed the one proof in `proofs` (the request's
        DPoP header values); DpopRefused saying what is wrong."""
        if len(proofs) != 1:
            raise DpopRefused("invalid_dpop_proof", "exactly one DPoP header is required")
        proof = proofs[0]
        claims, jwk_doc = self._signed_claims(proof)
        if claims["htm"] != facts.method:
            raise DpopRefused("invalid_dpop_proof", f"htm {claims['htm']!r} is not {facts.method}")
        htu = claims["htu"]
        if not isinstance(htu, str) or not _same_target(htu, facts.url):
            raise DpopRefused("invalid_dpop_proof", f"htu {htu!r} is not this request's URL")
        iat = claims["iat"]
        if not isinstance(iat, int | float) or abs(now - iat) > self.window_s:
            raise DpopRefused("invalid_dpop_proof", "iat is outside the acceptable window")
        jti = claims["jti"]
        self._forget_old_jtis(now)
        if not isinstance(jti, str) or jti in self.seen_jtis:
            raise DpopRefused("invalid_dpop_proof", "this proof was used before (jti replay)")
        if facts.access_token is not None:
            expected = hashlib.sha256(facts.access_token.encode()).digest()
            ath = base64.urlsafe_b64encode(expected).decode().rstrip("=")
            if claims.get("ath") != ath:
                raise DpopRefused("invalid_dpop_proof", "ath is not the hash of the access token")
        if self.nonces is not None and claims.get("nonce") != self.nonces.current:
            said = "has no nonce" if "nonce" not in claims else "has a nonce that is not current"
            raise DpopRefused("use_dpop_nonce", f"the proof {said}; use the one in DPoP-Nonce")
        self.seen_jtis[jti] = now
        return _thumbprint(jwk_doc)

    def _signed_claims(self, proof: str) -> tuple[dict[str, Any], Mapping[str, Any]]:
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.DecodeError as exc:
            raise DpopRefused("invalid_dpop_proof", f"not a JWS: {exc}") from None
        if header.get("typ") != "dpop+jwt":
            raise DpopRefused("invalid_dpop_proof", "typ is not dpop+jwt")
        if header.get("alg") != "ES256":
            raise DpopRefused("invalid_dpop_proof", f"alg {header.get('alg')!r} is not ES256")
        jwk_doc = header.get("jwk")
        if not isinstance(jwk_doc, dict) or jwk_doc.get("crv") != "P-256":
            raise DpopRefused("invalid_dpop_proof", "the header carries no P-256 jwk")
        if "d" in jwk_doc:
            raise DpopRefused("invalid_dpop_proof", "the jwk is a private key")
        try:
            key = jwt.PyJWK(jwk_doc, algorithm="ES256")
            claims: dict[str, Any] = jwt.decode(
                proof,
                key,
                algorithms=["ES256"],
                options={
                    "verify_iat": False,  # checked against the window below, both ways
                    "verify_exp": False,
                    "verify_nbf": False,
                    "require": ["jti", "htm", "htu", "iat"],
                },
            )
        except jwt.MissingRequiredClaimError as exc:
            raise DpopRefused("invalid_dpop_proof", str(exc)) from None
        except (jwt.InvalidTokenError, jwt.PyJWKError) as exc:
            why = f"the signature does not verify: {exc}"
            raise DpopRefused("invalid_dpop_proof", why) from None
        return claims, jwk_doc

    def _forget_old_jtis(self, now: float) -> None:
        for jti in [j for j, seen in self.seen_jtis.items() if now - seen > 2 * self.window_s]:
            del self.seen_jtis[jti]
