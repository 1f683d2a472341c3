"""Loopback TCP's mutual proof: before a shim says anything that matters, the daemon
proves it holds the secret in the endpoint file, then the shim proves it too. The secret
itself never crosses the wire. Standard library only (the shim imports it) and pure:
lines and random bytes in, lines and values out; transport.py and daemon/server.py do
the I/O.

    shim   -> daemon   {"mcp-bridge": 2, "challenge": Ns}
    daemon -> shim     {"mcp-bridge": 2, "challenge": Nd, "proof": MAC(DAEMON, Ns, Nd)}
    shim   -> daemon   the hello (hello.py) with "proof": MAC(SHIM, Nd, Ns)
    daemon -> shim     its ok or error reply, as on the Unix socket

    MAC(label, a, b) = HMAC-SHA256(key = the secret's UTF-8 bytes, label || a || b)
    Ns, Nd: 32 bytes from os.urandom, drawn afresh for every connection; all hex on the wire

Why this order and these inputs:

- The shim's first line is a random number. A program squatting on the port of a daemon
  that died (its pid reused, so the shim still tried it) learns nothing from it: the
  session's profile (static headers, a client secret) follows only once the answer's MAC
  checks out, and the secret never travels at all.
- Replay: each MAC covers the nonce the *other* side just drew. A daemon's answer recorded
  earlier, or collected by asking the daemon itself while it ran (any local process may
  connect and send any challenge), covers some other Ns, so it proves nothing to a shim
  whose Ns is new; a shim's proof recorded earlier covers some other Nd.
- Reflection: the two MACs have different labels (and take the nonces in opposite order),
  so the daemon, however it is asked, only ever makes daemon-labelled MACs and cannot be
  used to forge a shim's proof; and a shim makes its MAC only after the daemon proved
  itself, so a squatter cannot use a shim as its oracle either.
- Both nonces have a fixed length, so label || a || b has one reading; both sides compare
  MACs in constant time (`hmac.compare_digest`).

The challenge and its answer are understood whatever protocol version the line names, as
`stop` is (hello.py): a later mcp-bridge keeps this exchange so that it can still prove
itself to this daemon and retire it.
"""

from __future__ import annotations

from mcp_bridge.daemon import hello

__all__ = [
    "NONCE_BYTES",
    "NotProven",
    "ShimProof",
    "answer_challenge",
]

NONCE_BYTES = 32
_DAEMON_LABEL = b"mcp-bridge daemon proof\x00"
_SHIM_LABEL = b"mcp-bridge shim proof\x00"
_HEX_DIGITS = frozenset("0123456789abcdef")
_CHALLENGE = "challenge"
_PROOF = "proof"
_CHALLENGE_STEP = (
    'On loopback TCP a connection opens with {"mcp-bridge": 2, "challenge": 64 hex '
    "digits}, and the daemon proves itself first; mcp-bridge's own commands do this"
)


class NotProven(Exception):
    """What listens at the endpoint did not prove it holds the endpoint's secret: it is
    no daemon of this user's (or one too old to prove itself). The text says what it did.
    `old_protocol`: it answered as a daemon of protocol 1, which wanted the secret itself
    in the hello."""

    def __init__(self, what: str, *, old_protocol: bool = False) -> None:
        super().__init__(what)
        self.what = what
        self.old_protocol = old_protocol


class ShimProof:
    """The shim's side of one exchange: the secret from the endpoint file and the nonce
    it drew for this connection. (A plain class: a NamedTuple's class takes longer to
    make, at every start of the shim.)"""

    __slots__ = ("nonce", "secret")

    def __init__(self, secret: str, nonce: bytes) -> None:
        self.secret = secret  # never shown
        self.nonce = nonce

    def __repr__(self) -> str:
        return "ShimProof(...)"

    def challenge(self) -> bytes:
        """The first line to send: the nonce, nothing else."""
        return hello.encode({_CHALLENGE: self.nonce.hex()})

    def hello_fields(self, answer: bytes) -> dict[str, object]:
        """Check the daemon's answer to the challenge; what the hello then carries (the
        shim's own proof). Raises NotProven."""
        try:
            doc = hello.hello_object(answer, "Its answer to the challenge")
        except hello.HelloError as exc:
            raise NotProven(exc.what) from None
        given = doc.get(_PROOF)
        if given is None and isinstance(doc.get("error"), str):
            refusal = str(doc["error"])[:120]
            raise NotProven(
                f"it refused the challenge: {refusal!r}",
                old_protocol=doc.get("mcp-bridge") == 1,
            )
        daemon_nonce = _nonce(doc.get(_CHALLENGE))
        if daemon_nonce is None:
            raise NotProven("its answer carries no challenge of its own")
        if given is None:
            raise NotProven("its answer carries no proof")
        expected = _mac(self.secret, _DAEMON_LABEL, self.nonce, daemon_nonce)
        if not hello.is_digest(given, expected):
            raise NotProven("its proof does not match the secret in daemon.endpoint")
        return {_PROOF: _mac(self.secret, _SHIM_LABEL, daemon_nonce, self.nonce).hex()}


def answer_challenge(line: bytes, secret: str, nonce: bytes) -> tuple[bytes, bytes]:
    """The daemon's side: the answer line to a shim's challenge `line`, made with the
    daemon's fresh `nonce`, and the MAC the shim's hello must then carry (for
    `hello.parse_hello(proof=...)`). Raises HelloError for a line that is no challenge."""
    role = "The first line to the daemon"
    doc = hello.hello_object(line, role)
    if _CHALLENGE not in doc:
        hello.check_version(doc, role)  # an older shim says so before anything else
        raise hello.HelloError(f"{role} carries no challenge", _CHALLENGE_STEP)
    shim_nonce = _nonce(doc[_CHALLENGE])
    if shim_nonce is None:
        raise hello.HelloError(f"{role}'s challenge is not {NONCE_BYTES * 2} hex digits")
    answer = hello.encode(
        {
            _CHALLENGE: nonce.hex(),
            _PROOF: _mac(secret, _DAEMON_LABEL, shim_nonce, nonce).hex(),
        }
    )
    return answer, _mac(secret, _SHIM_LABEL, nonce, shim_nonce)


def _nonce(value: object) -> bytes | None:
    """A nonce as the wire carries it (lowercase hex of NONCE_BYTES bytes), or None."""
    if (
        not isinstance(value, str)
        or len(value) != NONCE_BYTES * 2
        or not _HEX_DIGITS.issuperset(value)
    ):
        return None
    return bytes.fromhex(value)


def _mac(secret: str, label: bytes, first: bytes, second: bytes) -> bytes:
    import hmac  # only on loopback TCP: a shim on the Unix socket never pays for it

    # surrogatepass: the endpoint file is JSON, which may carry a lone surrogate.
    key = secret.encode("utf-8", "surrogatepass")
    return hmac.digest(key, label + first + second, "sha256")
