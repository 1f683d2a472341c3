"""DPoP in the token endpoint's steps, driven by hand: a proof on each POST (a new one for
each retry), the AS's nonce answered once (RFC 9449 §8), `token_type` DPoP accepted only
for a request that carried a proof (§5), and a refresh proven with the same key."""

from __future__ import annotations

import jwt
import pytest

from mcp_bridge.auth.dpop import DpopKey
from mcp_bridge.auth.dpop_proofs import DpopNonces, DpopProofs
from mcp_bridge.auth.errors import AuthError, AuthResponseInvalid, LoginRequired
from mcp_bridge.auth.http_step import HttpRequest, HttpResponse
from mcp_bridge.auth.token_endpoint import exchange_code, refresh_tokens
from mcp_bridge.auth.token_set import TokenSet
from tests.fixtures.example_login import AS, ISSUER, MCP, NOW, PENDING, PUBLIC, token_reply
from tests.fixtures.http_steps import finish

TOKEN_URL = f"{ISSUER}/token"


def proofs() -> DpopProofs:
    return DpopProofs(DpopKey.generate(), DpopNonces(), clock=lambda: NOW)


def claims(request: HttpRequest) -> dict[str, object]:
    proof = request.header("DPoP")
    assert proof is not None
    key = jwt.PyJWK(jwt.get_unverified_header(proof)["jwk"], algorithm="ES256")
    verified: dict[str, object] = jwt.decode(
        proof, key, algorithms=["ES256"], options={"verify_iat": False}
    )
    return verified


def nonce_refusal(nonce: str | None) -> HttpResponse:
    refusal = HttpResponse.of_json({"error": "use_dpop_nonce"}, status=400)
    if nonce is None:
        return refusal
    return HttpResponse(400, refusal.body, (*refusal.headers, ("DPoP-Nonce", nonce)))


def test_the_code_exchange_carries_a_proof_and_answers_the_nonce_once() -> None:
    dpop = proofs()
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW, dpop=dpop)
    first = next(step)
    said = claims(first)
    assert (said["htm"], said["htu"]) == ("POST", TOKEN_URL)
    assert "nonce" not in said
    assert "ath" not in said  # no access token goes with a token request
    second = step.send(nonce_refusal("as-nonce"))
    again = claims(second)
    assert again["nonce"] == "as-nonce"
    assert again["jti"] != said["jti"]
    assert second.form() == first.form()
    tokens = finish(step, token_reply(token_type="DPoP", refresh_token="r"))
    assert tokens.is_dpop
    assert tokens.authorization_header() == "DPoP new-access"
    assert dpop.nonces.for_url(TOKEN_URL) == "as-nonce"


def test_a_second_nonce_refusal_is_an_error_in_words_not_a_loop() -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW, dpop=proofs())
    next(step)
    step.send(nonce_refusal("n1"))
    with pytest.raises(AuthError, match="keeps asking for a DPoP nonce") as refused:
        step.send(nonce_refusal("n2"))
    assert refused.value.next_step


def test_a_nonce_refusal_without_a_nonce_is_the_as_error() -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW, dpop=proofs())
    next(step)
    with pytest.raises(AuthError, match="use_dpop_nonce"):
        step.send(nonce_refusal(None))


def test_dpop_tokens_without_a_proof_are_refused_and_bearer_ones_with_one_kept() -> None:
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW)
    assert next(step).header("DPoP") is None
    with pytest.raises(AuthResponseInvalid, match="no DPoP proof"):
        finish(step, token_reply(token_type="DPoP"))
    # An AS that does not do DPoP ignores the proof (RFC 9449 §5): a Bearer token, used so.
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW, dpop=proofs())
    next(step)
    tokens = finish(step, token_reply(token_type="bearer"))
    assert not tokens.is_dpop
    assert tokens.authorization_header() == "Bearer new-access"


def test_a_refresh_of_bound_tokens_is_proven_with_their_key() -> None:
    dpop = proofs()
    bound = TokenSet("old", ISSUER, MCP, token_type="DPoP", refresh_token="r", scopes=("s",))
    step = refresh_tokens(AS, PUBLIC, bound, now=NOW, dpop=dpop)
    request = next(step)
    assert claims(request)["htu"] == TOKEN_URL
    header = jwt.get_unverified_header(request.header("DPoP") or "")
    assert header["jwk"] == dict(dpop.key.public_jwk)
    fresh = finish(step, token_reply(token_type="DPoP"))
    assert fresh.is_dpop
    assert fresh.refresh_token == "r"


@pytest.mark.parametrize("stored", ["DPoP", "dpop", "Bearer"])
def test_the_token_type_survives_the_vault(stored: str) -> None:
    doc = {**TokenSet("a", ISSUER, MCP).to_json(), "token_type": stored}
    assert TokenSet.from_json(doc).token_type == ("Bearer" if stored == "Bearer" else "DPoP")
    with pytest.raises(AuthResponseInvalid, match="damaged"):
        TokenSet.from_json({**doc, "token_type": "MAC"})


def test_bound_tokens_without_their_key_need_a_login_and_bearer_ones_carry_no_proof() -> None:
    bound = TokenSet("old", ISSUER, MCP, token_type="DPoP", refresh_token="r")
    with pytest.raises(LoginRequired, match="DPoP key"):
        next(refresh_tokens(AS, PUBLIC, bound, now=NOW))
    bearer = TokenSet("old", ISSUER, MCP, refresh_token="r")
    assert next(refresh_tokens(AS, PUBLIC, bearer, now=NOW, dpop=proofs())).header("DPoP") is None
