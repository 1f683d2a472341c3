"""Loopback TCP's mutual proof without sockets: the exchange, replay and reflection, a
protocol 1 daemon, and any bytes either side may be sent (hypothesis)."""

from __future__ import annotations

import json
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcp_bridge.daemon import hello, proof

SECRET = "s3cr3t-token_urlsafe-like-value"
NONCES = st.binary(min_size=proof.NONCE_BYTES, max_size=proof.NONCE_BYTES)


def exchange(
    shim_nonce: bytes, daemon_nonce: bytes, *, daemon_secret: str = SECRET
) -> tuple[proof.ShimProof, bytes, bytes]:
    """A shim's exchange, the daemon's answer to its challenge, and the proof the daemon
    then expects in the hello."""
    shim = proof.ShimProof(SECRET, shim_nonce)
    answer, expected = proof.answer_challenge(shim.challenge(), daemon_secret, daemon_nonce)
    return shim, answer, expected


def wire(**fields: object) -> bytes:
    """A protocol 2 line with `fields`."""
    return json.dumps({"mcp-bridge": 2, **fields}).encode()


def hello_line(fields: dict[str, object], **message: object) -> bytes:
    return hello.encode({**message, **fields})


@given(NONCES, NONCES)
def test_a_shim_and_a_daemon_that_share_the_secret_prove_it_to_each_other(
    shim_nonce: bytes, daemon_nonce: bytes
) -> None:
    shim, answer, expected = exchange(shim_nonce, daemon_nonce)
    fields = shim.hello_fields(answer)
    request = hello.parse_hello(hello_line(fields, session={"url": "x"}), proof=expected)
    assert request == hello.SessionHello({"url": "x"})


def test_the_secret_travels_in_no_line() -> None:
    shim, answer, _ = exchange(os.urandom(32), os.urandom(32))
    lines = [shim.challenge(), answer, hello_line(shim.hello_fields(answer), command="stop")]
    for line in lines:
        assert SECRET.encode() not in line
    assert set(json.loads(shim.challenge())) == {"mcp-bridge", "challenge"}
    assert SECRET not in repr(shim)


def test_a_daemon_with_another_secret_is_not_proven() -> None:
    shim, answer, _ = exchange(os.urandom(32), os.urandom(32), daemon_secret="another")
    with pytest.raises(proof.NotProven, match=r"does not match the secret in daemon\.endpoint"):
        shim.hello_fields(answer)


def test_an_answer_made_for_another_challenge_is_not_proven() -> None:
    """Replay: what the daemon answered someone else (a program that asked it while it
    ran, to squat its port later) proves nothing to a shim with a nonce of its own."""
    _, recorded, _ = exchange(os.urandom(32), os.urandom(32))
    shim = proof.ShimProof(SECRET, os.urandom(32))
    with pytest.raises(proof.NotProven, match="does not match"):
        shim.hello_fields(recorded)


def test_a_shims_proof_from_another_connection_is_refused() -> None:
    first, answer, _ = exchange(os.urandom(32), os.urandom(32))
    replayed = hello_line(first.hello_fields(answer), command="stop")
    _, _, expected_now = exchange(os.urandom(32), os.urandom(32))
    with pytest.raises(hello.HelloError, match="proof does not match"):
        hello.parse_hello(replayed, proof=expected_now)


@given(NONCES, NONCES)
def test_the_daemon_cannot_be_made_to_forge_a_shims_proof(nonce_a: bytes, nonce_b: bytes) -> None:
    """Reflection: on connection 1 the daemon drew `nonce_a` and waits for the shim's
    proof. An attacker opens connection 2 with `nonce_a` as its challenge, in the hope the
    daemon's answer there is the proof connection 1 wants: the labels differ."""
    _, first_answer, wanted = exchange(nonce_b, nonce_a)
    attacker = proof.ShimProof("unknown to the attacker", nonce_a)
    reflected, _ = proof.answer_challenge(attacker.challenge(), SECRET, nonce_b)
    reflected_proof = json.loads(reflected)["proof"]
    with pytest.raises(hello.HelloError, match="proof does not match"):
        hello.parse_hello(hello_line({"proof": reflected_proof}, command="stop"), proof=wanted)
    # ...nor can a squatter echo the shim's own challenge back as its answer.
    shim = proof.ShimProof(SECRET, nonce_b)
    echo = hello.encode({"challenge": nonce_b.hex(), "proof": nonce_b.hex() * 2})
    with pytest.raises(proof.NotProven):
        shim.hello_fields(echo)
    assert json.loads(first_answer)["proof"] != wanted.hex()


def test_a_protocol_1_daemon_is_not_proven_and_named_as_such() -> None:
    """What a daemon of protocol 1 answers a challenge: it wanted the secret itself."""
    refusal = json.dumps(
        {
            "mcp-bridge": 1,
            "error": "The hello carries no daemon secret",
            "next_step": "mcp-bridge's own commands read it from daemon.endpoint",
            "config": False,
        }
    ).encode()
    with pytest.raises(proof.NotProven, match="refused the challenge") as caught:
        proof.ShimProof(SECRET, os.urandom(32)).hello_fields(refusal)
    assert caught.value.old_protocol


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        (b"", "not JSON"),
        (b"HTTP/1.1 400 Bad Request", "not JSON"),
        (b'{"jsonrpc":"2.0"}', "not an mcp-bridge hello"),
        (wire(ok=True), "carries no challenge of its own"),
        (wire(challenge="00", proof="00"), "carries no challenge of its own"),
        (wire(challenge="A" * 64, proof="x"), "no challenge"),
        (wire(challenge="a" * 64, proof=7), "does not match"),
        (wire(challenge="a" * 64), "carries no proof"),
    ],
)
def test_a_malformed_answer_is_not_proven_with_a_reason(answer: bytes, complaint: str) -> None:
    with pytest.raises(proof.NotProven, match=complaint):
        proof.ShimProof(SECRET, os.urandom(32)).hello_fields(answer)


@pytest.mark.parametrize(
    ("first_line", "complaint"),
    [
        (b"GET / HTTP/1.1", "not JSON"),
        (wire(command="stop"), "carries no challenge"),
        (b'{"mcp-bridge":1,"command":"stop","secret":"x"}', "speaks daemon protocol 1; this"),
        (wire(challenge="abc"), "challenge is not 64 hex digits"),
        (wire(challenge="F" * 64), "not 64 hex digits"),
        (wire(challenge=["f" * 64]), "not 64 hex digits"),
    ],
)
def test_the_daemon_answers_no_challenge_but_a_well_formed_one(
    first_line: bytes, complaint: str
) -> None:
    with pytest.raises(hello.HelloError, match=complaint) as caught:
        proof.answer_challenge(first_line, SECRET, os.urandom(32))
    assert SECRET not in str(caught.value)


def test_a_challenge_of_a_later_protocol_is_answered_so_that_it_can_retire_this_daemon() -> None:
    line = json.dumps({"mcp-bridge": 3, "challenge": "ab" * 32}).encode()
    answer, expected = proof.answer_challenge(line, SECRET, os.urandom(32))
    later_shim = proof.ShimProof(SECRET, bytes.fromhex("ab" * 32))
    fields = later_shim.hello_fields(answer)
    stop = json.dumps({"mcp-bridge": 3, "command": "stop", **fields}).encode()
    assert hello.parse_hello(stop, proof=expected) == hello.CommandHello("stop")


@pytest.mark.parametrize("command", ["status", "stop"])
def test_a_hello_without_its_proof_is_refused_even_stop(command: str) -> None:
    _, _, expected = exchange(os.urandom(32), os.urandom(32))
    with pytest.raises(hello.HelloError, match="carries no proof") as caught:
        hello.parse_hello(hello.encode({"command": command}), proof=expected)
    assert "daemon.endpoint" in caught.value.next_step
    with pytest.raises(hello.HelloError, match="proof does not match"):
        hello.parse_hello(b'{"mcp-bridge":2,"command":"stop","proof":"\\ud800"}', proof=expected)


def test_on_a_unix_socket_a_proof_field_is_ignored() -> None:
    line = hello.encode({"command": "status", "proof": "anything"})
    assert hello.parse_hello(line) == hello.CommandHello("status")


# -- any bytes, either side -------------------------------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=70)
json_values = scalars | st.lists(scalars, max_size=3)
protocol_lines = st.builds(
    lambda doc: json.dumps(doc).encode(),
    st.dictionaries(
        st.sampled_from(["mcp-bridge", "challenge", "proof", "error", "command", "session"]),
        json_values | st.sampled_from(["ab" * 32, "a" * 64]),
    ),
)
any_line = st.binary() | protocol_lines


@given(any_line, NONCES)
def test_any_first_line_gets_an_answer_or_a_reason(line: bytes, nonce: bytes) -> None:
    refusal: hello.HelloError | None = None
    try:
        answer, expected = proof.answer_challenge(line, SECRET, nonce)
    except hello.HelloError as exc:
        refusal = exc
    if refusal is not None:
        assert refusal.what
        assert SECRET not in str(refusal)
        return
    assert json.loads(answer)["challenge"] == nonce.hex()
    assert len(expected) == 32


@given(any_line, NONCES, st.text(min_size=1))
def test_any_answer_is_proven_only_by_the_secret(line: bytes, nonce: bytes, secret: str) -> None:
    """Whatever a squatter sends, the shim refuses it with a reason (a key of any text,
    lone surrogates too, is no crash)."""
    with pytest.raises(proof.NotProven) as caught:
        proof.ShimProof(secret, nonce).hello_fields(line)
    assert caught.value.what


@given(any_line, NONCES)
def test_any_hello_without_the_right_proof_is_refused(line: bytes, nonce: bytes) -> None:
    _, _, expected = exchange(nonce, nonce)
    with pytest.raises(hello.HelloError) as caught:
        hello.parse_hello(line, proof=expected)
    assert caught.value.what
