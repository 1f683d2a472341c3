"""Signed JWTs in compact JWS form (RFC 7515, RFC 7519): the one signer the client's own
assertions go through (RFC 7523 client authentication, docs/grants.md), and the unverified
read of a JWT someone else signed (an ID token's expiry, an ID-JAG's audience) for a
clearer message before a server says no. Pure: no clock, no files; the key's bytes come in.

Two algorithms (RFC 7518 §3): ES256 for a P-256 key and RS256 for an RSA key of 2048 bits
or more, which together cover what authorization servers accept for `private_key_jwt`
(`token_endpoint_auth_signing_alg_values_supported`). The algorithm follows from the key;
nothing here ever signs with `none` or an HMAC.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

from mcp_bridge.errors import ConfigError

__all__ = [
    "MIN_RSA_BITS",
    "SigningAlg",
    "SigningKey",
    "b64url",
    "b64url_decode",
    "sign_jwt",
    "unverified_claims",
]

SigningAlg = Literal["ES256", "RS256"]
MIN_RSA_BITS = 2048  # RFC 7518 §3.3: a key of 2048 bits or larger MUST be used with RS256
_P256_BYTES = 32  # ES256's r and s are 32 bytes each (RFC 7518 §3.4)
_MAX_JWT_CHARS = 64 * 1024


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 §2), the encoding of every JWS part."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """The bytes of a base64url part; ValueError for anything else (padding tolerated)."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ValueError("not base64url") from exc


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key that signs JWTs, and the algorithm it signs with. The key is hidden
    from repr; it is read from the user's file for each use and kept nowhere else."""

    private: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey = field(repr=False, compare=False)
    alg: SigningAlg
    key_id: str | None = None  # `kid`, for a server that picks the key by it

    @classmethod
    def from_pem(cls, data: bytes, *, source: str, key_id: str | None = None) -> SigningKey:
        """The unencrypted PEM private key (PKCS#8, or the traditional EC / RSA forms) in
        `data`, read from `source` (named in messages). ConfigError for anything else: a
        passphrase-protected key, a public key, another curve, a short RSA key."""
        how = (
            "Give an unencrypted PEM private key: P-256 (ES256) or RSA of 2048 bits or more "
            "(RS256), e.g. `openssl ecparam -name prime256v1 -genkey -noout | "
            "openssl pkcs8 -topk8 -nocrypt -out client-key.pem`"
        )
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except TypeError:  # cryptography: "Password was not given but private key is encrypted"
            raise ConfigError(
                f"The client key in {source} is protected by a passphrase",
                next_step="Remove the passphrase (`openssl pkcs8 -topk8 -nocrypt`); keep the "
                "file readable by you only",
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise ConfigError(
                f"{source} holds no PEM private key that can be read", next_step=how
            ) from None
        if isinstance(private, ec.EllipticCurvePrivateKey):
            if not isinstance(private.curve, ec.SECP256R1):
                raise ConfigError(
                    f"The client key in {source} is on curve {private.curve.name}; "
                    "ES256 signs with P-256 only",
                    next_step=how,
                )
            return cls(private, "ES256", key_id)
        if isinstance(private, rsa.RSAPrivateKey):
            if private.key_size < MIN_RSA_BITS:
                raise ConfigError(
                    f"The RSA client key in {source} has {private.key_size} bits; "
                    f"RS256 needs {MIN_RSA_BITS} or more (RFC 7518 §3.3)",
                    next_step=how,
                )
            return cls(private, "RS256", key_id)
        raise ConfigError(
            f"The client key in {source} is a {type(private).__name__.lstrip('_')}, "
            "which is neither P-256 nor RSA",
            next_step=how,
        )

    def sign(self, signing_input: bytes) -> bytes:
        """The JWS signature of `signing_input` under `alg`."""
        if isinstance(self.private, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(self.private.sign(signing_input, ec.ECDSA(hashes.SHA256())))
            # JWS wants R || S, each a fixed 32 bytes (RFC 7518 §3.4), not the DER sequence.
            return r.to_bytes(_P256_BYTES, "big") + s.to_bytes(_P256_BYTES, "big")
        return self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def _json_part(doc: Mapping[str, object]) -> str:
    return b64url(json.dumps(doc, separators=(",", ":")).encode())


def sign_jwt(key: SigningKey, claims: Mapping[str, object]) -> str:
    """`claims` as a JWT signed with `key` (compact JWS). The header names the algorithm,
    the type JWT and the key's `kid` when it has one; never a `jwk`, which would invite
    the server to trust whatever key comes with the token."""
    header: dict[str, object] = {"alg": key.alg, "typ": "JWT"}
    if key.key_id is not None:
        header["kid"] = key.key_id
    signing_input = f"{_json_part(header)}.{_json_part(claims)}"
    return f"{signing_input}.{b64url(key.sign(signing_input.encode('ascii')))}"


def unverified_claims(token: str) -> dict[str, object] | None:
    """The claims of the JWT `token` as a dict, its signature NOT checked; None when it is
    no JWT. Only for telling the user what is wrong before a server refuses: the server
    that receives the token is the one that verifies it."""
    if len(token) > _MAX_JWT_CHARS:
        return None
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(b64url_decode(parts[1]))
    except ValueError:  # bad base64, bad UTF-8, bad JSON: all ValueErrors
        return None
    return claims if isinstance(claims, dict) else None
