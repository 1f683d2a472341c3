"""DPoP (RFC 9449): the key pair a server's tokens are bound to, and the proof JWT that
goes with every request made with them. Pure: the clock (`now`) and the proof's unique id
(`jti`) come in as arguments, so a proof is a function of its inputs (and of ECDSA's own
randomness); keeping the key and the nonces is dpop_proofs.py's job.

A proof (RFC 9449 §4.2) is a JWS in compact form:

    header  {"typ": "dpop+jwt", "alg": "ES256", "jwk": <the public key>}
    claims  {"jti", "htm", "htu", "iat"}, plus "nonce" once a server gave one (§8, §9)
            and "ath" when it goes with an access token to a resource (§7.1)

Only ES256 (ECDSA P-256 with SHA-256, RFC 7518 §3.4) is made: every DPoP server must
accept some asymmetric algorithm, ES256 is the one RFC 9449's examples and the MCP DPoP
extension (SEP-1932) name, and `cryptography` signs it in tens of microseconds.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final
from urllib.parse import urlsplit, urlunsplit

from cryptography.hazmat.primitives.asymmetric import ec

from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.errors import AuthError, AuthResponseInvalid, sanitize_remote_text
from mcp_bridge.auth.jws import SigningKey, b64url, b64url_decode

__all__ = [
    "DPOP_ALG",
    "DPOP_JWT_TYPE",
    "DpopKey",
    "access_token_hash",
    "build_proof",
    "jwk_thumbprint",
    "login_binds_tokens",
    "proof_htu",
]

DPOP_ALG: Final = "ES256"
DPOP_JWT_TYPE = "dpop+jwt"
_COORDINATE_BYTES = 32  # P-256: x, y and d are 32 bytes each
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _json_segment(doc: Mapping[str, object]) -> str:
    return b64url(json.dumps(doc, separators=(",", ":")).encode())


def jwk_thumbprint(public_jwk: Mapping[str, str]) -> str:
    """The RFC 7638 SHA-256 thumbprint of an EC public key: the required members in
    lexicographic order, no whitespace. What an AS puts in `cnf.jkt` (RFC 9449 §6.1) and
    the authorization request's `dpop_jkt` (§10)."""
    members = {name: public_jwk[name] for name in ("crv", "kty", "x", "y")}
    canonical = json.dumps(members, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode()).digest())


@dataclass(frozen=True, slots=True)
class DpopKey:
    """A P-256 key pair, with what every proof repeats computed once: the public JWK, its
    thumbprint, the encoded JWS header, and the signer (jws.py's, as for client
    assertions). The private key is hidden from repr; it is only ever written to the vault
    (auth_records.py), encrypted like the tokens."""

    private: ec.EllipticCurvePrivateKey = field(repr=False, compare=False)
    public_jwk: Mapping[str, str]
    thumbprint: str
    header_segment: str = field(repr=False)
    signer: SigningKey = field(repr=False, compare=False)

    @classmethod
    def generate(cls) -> DpopKey:
        return cls.of(ec.generate_private_key(ec.SECP256R1()))

    @classmethod
    def of(cls, private: ec.EllipticCurvePrivateKey) -> DpopKey:
        numbers = private.public_key().public_numbers()
        public_jwk = MappingProxyType(
            {
                "kty": "EC",
                "crv": "P-256",
                "x": b64url(numbers.x.to_bytes(_COORDINATE_BYTES, "big")),
                "y": b64url(numbers.y.to_bytes(_COORDINATE_BYTES, "big")),
            }
        )
        header = {"typ": DPOP_JWT_TYPE, "alg": DPOP_ALG, "jwk": dict(public_jwk)}
        thumbprint, segment = jwk_thumbprint(public_jwk), _json_segment(header)
        return cls(private, public_jwk, thumbprint, segment, SigningKey(private, DPOP_ALG))

    def to_jwk(self) -> dict[str, str]:
        """The private JWK (RFC 7518 §6.2.2), for the vault only."""
        d = self.private.private_numbers().private_value
        return {**self.public_jwk, "d": b64url(d.to_bytes(_COORDINATE_BYTES, "big"))}

    @classmethod
    def from_jwk(cls, doc: object) -> DpopKey:
        """Read back `to_jwk` output; AuthResponseInvalid when it is not a P-256 private
        key whose public half matches (a damaged record must not sign anything)."""
        try:
            if not isinstance(doc, dict) or doc.get("kty") != "EC" or doc.get("crv") != "P-256":
                raise ValueError("not a P-256 JWK")
            d = int.from_bytes(b64url_decode(str(doc["d"])), "big")
            key = cls.of(ec.derive_private_key(d, ec.SECP256R1()))
            if (doc.get("x"), doc.get("y")) != (key.public_jwk["x"], key.public_jwk["y"]):
                raise ValueError("the public key does not match the private key")
        except (KeyError, TypeError, ValueError) as exc:
            raise AuthResponseInvalid(
                "The stored DPoP key is damaged", next_step="Log in again"
            ) from exc
        return key


def proof_htu(url: str) -> str:
    """The `htu` of a request to `url` (RFC 9449 §4.2): the target URI without its query
    and fragment, in the normal form a server compares it in (RFC 3986 §6.2.2-6.2.3:
    scheme and host lowercased, the scheme's default port and userinfo dropped, an empty
    path as "/"). Percent-encoding and the path's case are left as they are."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    port = parts.port
    netloc = host if port is None or port == _DEFAULT_PORTS.get(scheme) else f"{host}:{port}"
    return urlunsplit((scheme, netloc, parts.path or "/", "", ""))


def access_token_hash(access_token: str) -> str:
    """`ath` (RFC 9449 §4.2): base64url(SHA-256(the ASCII access token)). UTF-8 is the
    same bytes for an ASCII token, and does not raise for one that is not."""
    return b64url(hashlib.sha256(access_token.encode()).digest())


def build_proof(
    key: DpopKey,
    htm: str,
    htu: str,
    now: float,
    jti: str,
    nonce: str | None = None,
    access_token: str | None = None,
) -> str:
    """One DPoP proof for a `htm` request to `htu` (made with proof_htu here, so any URL
    may be passed), issued at `now` (epoch seconds) with the unique `jti`. `nonce`: the
    last one the server gave; `access_token`: the token it goes with (a resource request),
    whose hash becomes `ath`. Returns the compact JWS."""
    claims: dict[str, object] = {
        "jti": jti,
        "htm": htm,
        "htu": proof_htu(htu),
        "iat": int(now),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    if access_token is not None:
        claims["ath"] = access_token_hash(access_token)
    signing_input = f"{key.header_segment}.{_json_segment(claims)}"
    return f"{signing_input}.{b64url(key.signer.sign(signing_input.encode('ascii')))}"


def login_binds_tokens(as_algs: tuple[str, ...], challenge: BearerChallenge | None) -> bool:
    """Whether a login asks for tokens bound to a DPoP key: the authorization server lists
    ES256 in `dpop_signing_alg_values_supported` (`as_algs`, RFC 9449 §5.1), or the
    resource's 401 carries a DPoP challenge naming ES256 or no algorithm (§7.1). DPoP is
    opt-in for both sides (MCP's DPoP extension): otherwise the tokens stay Bearer. A
    resource that takes only DPoP, in algorithms we do not sign, is refused in words."""
    if DPOP_ALG in as_algs:
        return True
    if challenge is None or challenge.dpop_algs is None:
        return False
    if not challenge.dpop_algs or DPOP_ALG in challenge.dpop_algs:
        return True
    if challenge.offers_bearer:
        return False
    algs = sanitize_remote_text(" ".join(challenge.dpop_algs), max_chars=60)
    raise AuthError(
        f"The MCP server accepts only DPoP proofs signed with {algs}; "
        f"mcp-bridge signs them with {DPOP_ALG} only",
        next_step="Ask the server's owner to accept ES256 DPoP proofs",
    )
