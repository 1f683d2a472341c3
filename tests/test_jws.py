"""auth/jws.py and auth/client_assertion.py: keys read from PEM (and refused with a reason),
JWTs whose signatures another implementation (PyJWT) verifies, and the unverified read of
a JWT that never raises, whatever it is given."""

from __future__ import annotations

import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.auth.client_assertion import ASSERTION_LIFETIME_S, ClientAssertions
from mcp_bridge.auth.jws import SigningKey, b64url, sign_jwt, unverified_claims
from mcp_bridge.errors import ConfigError
from tests.fixtures.grant_keys import pem_of

ISSUER = "https://as.example.com"


def public_pem(key: SigningKey) -> bytes:
    return key.private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    return SigningKey.from_pem(pem_of(ec.generate_private_key(ec.SECP256R1())), source="ec.pem")


@pytest.fixture(scope="module")
def rsa_key() -> SigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey.from_pem(pem_of(private), source="rsa.pem", key_id="k1")


def test_the_algorithm_follows_the_key(ec_key: SigningKey, rsa_key: SigningKey) -> None:
    assert (ec_key.alg, rsa_key.alg) == ("ES256", "RS256")
    assert "private" not in repr(ec_key)


@pytest.mark.parametrize("which", ["ec_key", "rsa_key"])
def test_a_signed_jwt_verifies_elsewhere(which: str, request: pytest.FixtureRequest) -> None:
    key: SigningKey = request.getfixturevalue(which)
    token = sign_jwt(key, {"sub": "me", "n": 1})
    claims = jwt.decode(token, public_pem(key), algorithms=[key.alg])
    assert claims == {"sub": "me", "n": 1}
    header = jwt.get_unverified_header(token)
    assert header["typ"] == "JWT"
    assert header.get("kid") == key.key_id
    assert "jwk" not in header


def test_a_tampered_jwt_does_not_verify(ec_key: SigningKey) -> None:
    head, _, signature = sign_jwt(ec_key, {"sub": "me"}).split(".")
    forged = f"{head}.{b64url(json.dumps({'sub': 'root'}).encode())}.{signature}"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(forged, public_pem(ec_key), algorithms=["ES256"])


def test_each_client_assertion_is_new_and_short_lived(ec_key: SigningKey) -> None:
    assertions = ClientAssertions(ec_key, clock=lambda: 1_800_000_000.5)
    first, second = (assertions.assertion("svc", ISSUER) for _ in range(2))
    claims = [
        jwt.decode(
            t,
            public_pem(ec_key),
            algorithms=["ES256"],
            audience=ISSUER,
            options={"verify_exp": False, "verify_iat": False},
        )
        for t in (first, second)
    ]
    assert claims[0]["jti"] != claims[1]["jti"]
    assert claims[0]["iss"] == claims[0]["sub"] == "svc"
    assert claims[0]["aud"] == ISSUER  # one string: the issuer (rfc7523bis)
    assert claims[0]["iat"] == 1_800_000_000
    assert claims[0]["exp"] == 1_800_000_000 + ASSERTION_LIFETIME_S


@pytest.mark.parametrize(
    ("pem", "expected"),
    [
        (pem_of(ec.generate_private_key(ec.SECP384R1())), "curve secp384r1"),
        (pem_of(rsa.generate_private_key(public_exponent=65537, key_size=1024)), "1024 bits"),
        (
            ed25519.Ed25519PrivateKey.generate().private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
            "neither P-256 nor RSA",
        ),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pass"),
            ),
            "passphrase",
        ),
        (
            ec.generate_private_key(ec.SECP256R1())
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            ),
            "no PEM private key",
        ),
        (b"not a key at all", "no PEM private key"),
    ],
    ids=["p384", "rsa1024", "ed25519", "encrypted", "public", "garbage"],
)
def test_a_key_that_cannot_sign_is_refused_saying_why(pem: bytes, expected: str) -> None:
    with pytest.raises(ConfigError) as refused:
        SigningKey.from_pem(pem, source="/keys/client.pem")
    assert expected in refused.value.what
    assert "/keys/client.pem" in refused.value.what
    assert refused.value.next_step


def test_unverified_claims_read_a_jwt_and_nothing_else(ec_key: SigningKey) -> None:
    assert unverified_claims(sign_jwt(ec_key, {"exp": 5})) == {"exp": 5}
    assert unverified_claims("a.b") is None
    assert unverified_claims(f"x.{b64url(b'[1]')}.y") is None  # JSON, but no object


@given(st.text(max_size=300))
def test_unverified_claims_never_raise(text: str) -> None:
    result = unverified_claims(text)
    assert result is None or isinstance(result, dict)


@given(st.binary(max_size=200))
def test_unverified_claims_of_any_payload_never_raise(payload: bytes) -> None:
    result = unverified_claims(f"e30.{b64url(payload)}.c2ln")
    assert result is None or isinstance(result, dict)
