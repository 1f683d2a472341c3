"""The DPoP proof builder (auth/dpop.py) against verifiers it shares no code with: PyJWT
for the signature, the demo servers' checks (demo/dpop_checks.py) for the claims, and the
examples of RFC 9449 for the thumbprint and `ath`. Hypothesis varies methods and URLs."""

from __future__ import annotations

import string
from urllib.parse import urlsplit

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.dpop import (
    DpopKey,
    access_token_hash,
    build_proof,
    jwk_thumbprint,
    login_binds_tokens,
    proof_htu,
)
from mcp_bridge.auth.dpop_proofs import DpopNonces, DpopProofs, is_nonce
from mcp_bridge.auth.errors import AuthError, AuthResponseInvalid
from mcp_bridge.demo.dpop_checks import DpopRefused, ProofVerifier, RequestFacts

KEY = DpopKey.generate()
NOW = 1_800_000_000.0
TCHARS = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"

methods = st.text(alphabet=TCHARS, min_size=1, max_size=12)
HOST = r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z0-9]{1,10}){0,3}"
PCHARS = string.ascii_letters + string.digits + "-._~%!$&'()*+,;=:@"  # RFC 3986 pchar
hosts = st.from_regex(HOST, fullmatch=True)
segments = st.text(alphabet=PCHARS, max_size=12)


@st.composite
def urls(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTPS", "Http"]))
    host = draw(hosts)
    host = draw(st.sampled_from([host, host.upper(), "127.0.0.1", "[::1]"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080", ":1"]))
    path = "".join(f"/{s}" for s in draw(st.lists(segments, max_size=4)))
    query = draw(st.sampled_from(["", "?", "?a=1&b=2", "?sessionId=x%20y"]))
    fragment = draw(st.sampled_from(["", "#", "#frag"]))
    return f"{scheme}://{host}{port}{path}{query}{fragment}"


def claims_of(proof: str) -> dict[str, object]:
    header = jwt.get_unverified_header(proof)
    assert header["typ"] == "dpop+jwt"
    assert header["alg"] == "ES256"
    assert "d" not in header["jwk"]
    key = jwt.PyJWK(header["jwk"], algorithm="ES256")
    verified: dict[str, object] = jwt.decode(
        proof, key, algorithms=["ES256"], options={"verify_iat": False}
    )
    return verified


@given(htm=methods, url=urls())
def test_every_proof_verifies_and_names_the_request_without_query_or_fragment(
    htm: str, url: str
) -> None:
    proof = build_proof(KEY, htm, url, NOW, "jti-1")
    claims = claims_of(proof)
    assert claims["htm"] == htm
    htu = claims["htu"]
    assert isinstance(htu, str)
    parts, given_parts = urlsplit(htu), urlsplit(url)
    assert not parts.query
    assert not parts.fragment
    assert "?" not in htu
    assert "#" not in htu
    assert parts.scheme == given_parts.scheme.lower()
    assert parts.hostname == given_parts.hostname
    assert parts.path == (given_parts.path or "/")
    default_port = {"http": 80, "https": 443}[parts.scheme]
    assert parts.port == (None if given_parts.port in (None, default_port) else given_parts.port)
    assert proof_htu(htu) == htu  # already in normal form
    verifier = ProofVerifier()
    jkt = verifier.verify([proof], RequestFacts(htm, url), NOW)
    assert jkt == KEY.thumbprint


@given(token=st.text(alphabet=string.ascii_letters + string.digits + "-._~+/=", min_size=1))
def test_ath_binds_the_proof_to_its_access_token(token: str) -> None:
    proof = build_proof(KEY, "POST", "https://mcp.example/mcp", NOW, "j", access_token=token)
    assert claims_of(proof)["ath"] == access_token_hash(token)
    ProofVerifier().verify([proof], RequestFacts("POST", "https://mcp.example/mcp", token), NOW)
    other = RequestFacts("POST", "https://mcp.example/mcp", token + "x")
    with pytest.raises(DpopRefused, match="ath"):
        ProofVerifier().verify([proof], other, NOW)


def test_the_rfc_9449_examples() -> None:
    # RFC 9449 §6.1: the thumbprint of the §4.2 example key; §7.1: the example `ath`.
    example = {
        "kty": "EC",
        "x": "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs",
        "y": "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA",
        "crv": "P-256",
    }
    assert jwk_thumbprint(example) == "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
    token = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
    assert access_token_hash(token) == "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"


def test_the_nonce_and_iat_are_the_ones_given() -> None:
    proof = build_proof(KEY, "GET", "https://as.example/token", NOW + 0.9, "j", nonce="n-1")
    claims = claims_of(proof)
    assert (claims["nonce"], claims["iat"], claims["jti"]) == ("n-1", int(NOW), "j")
    assert "ath" not in claims


def test_the_key_survives_the_vault_and_a_damaged_one_is_refused() -> None:
    stored = KEY.to_jwk()
    assert DpopKey.from_jwk(stored) == KEY
    assert stored["d"] not in repr(KEY)
    assert "private" not in repr(KEY)
    other = DpopKey.generate().to_jwk()
    damaged: list[object] = [{**stored, "x": other["x"]}, {**stored, "crv": "P-384"}, {}, []]
    for record in damaged:
        with pytest.raises(AuthResponseInvalid, match="DPoP key is damaged"):
            DpopKey.from_jwk(record)


def test_each_proof_has_its_own_jti_and_the_origin_s_latest_nonce() -> None:
    nonces = DpopNonces()
    proofs = DpopProofs(KEY, nonces, clock=lambda: NOW)
    assert nonces.remember("https://as.example/token", "a1")
    assert not nonces.remember("https://AS.example:443/other", "a1")  # same origin, same nonce
    assert nonces.remember("https://as.example/token", "a2")  # the latest wins
    assert not nonces.remember("https://as.example/token", 'bad"nonce')  # not RFC 9449 §8.1
    first = claims_of(proofs.proof("POST", "https://as.example/token"))
    second = claims_of(proofs.proof("POST", "https://as.example/token"))
    elsewhere = claims_of(proofs.proof("POST", "https://mcp.example/mcp"))
    assert first["jti"] != second["jti"]
    assert first["nonce"] == second["nonce"] == "a2"
    assert "nonce" not in elsewhere


@given(value=st.text(max_size=40))
def test_nonce_syntax(value: str) -> None:
    allowed = set(map(chr, range(0x21, 0x7F))) - {'"', "\\"}
    assert is_nonce(value) == (bool(value) and set(value) <= allowed)


@pytest.mark.parametrize(
    ("as_algs", "header", "binds"),
    [
        (("ES256",), None, True),
        (("RS256", "ES256"), 'Bearer realm="x"', True),
        (("RS256",), None, False),
        ((), 'Bearer realm="x"', False),
        ((), 'Bearer realm="x", DPoP algs="ES256 RS256"', True),
        ((), 'DPoP algs="ES256"', True),
        ((), "DPoP", True),
        ((), 'Bearer realm="x", DPoP algs="EdDSA"', False),
    ],
)
def test_which_logins_bind_tokens(
    as_algs: tuple[str, ...], header: str | None, binds: bool
) -> None:
    challenge = BearerChallenge.from_header(header)
    assert login_binds_tokens(as_algs, challenge) is binds


def test_a_resource_taking_only_dpop_in_other_algorithms_is_refused_in_words() -> None:
    challenge = BearerChallenge.from_header('DPoP algs="EdDSA PS256"')
    with pytest.raises(AuthError, match="EdDSA PS256") as refused:
        login_binds_tokens(("RS256",), challenge)
    assert "ES256" in refused.value.next_step
