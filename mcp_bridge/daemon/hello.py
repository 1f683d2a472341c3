"""The first line on a daemon connection, each way. Standard library only (the shim
imports it), and pure: lines in, values out.

    shim   -> daemon   {"mcp-bridge": 2, "session": {server profile}}        bridge a client
                       {"mcp-bridge": 2, "command": "status" | "stop" | "page"}  control
                       {"mcp-bridge": 2, "command": "join-login", "url": URL}   join a login
    daemon -> shim     {"mcp-bridge": 2, "ok": true, ...}                     then JSON-RPC lines
                       {"mcp-bridge": 2, "error": "...", "next_step": "...",
                        "config": true|false}                                 then close

After an `ok` to a session hello, every line either way is one JSON-RPC message. A peer
that speaks another version, or sends anything else first, gets an error line naming both
versions, never silence.

On loopback TCP (transport.py) two lines come before the hello: the shim's challenge and
the daemon's answer, by which the daemon proves it holds the per-start secret of its
endpoint file (proof.py). The hello then carries `"proof": "..."`, the shim's own proof,
checked in constant time before anything else in it counts, `stop` included. On the Unix
socket (the kernel names the peer's uid) there is neither the exchange nor the field.

Protocol 2 is protocol 1 with that exchange. Protocol 1's loopback hello carried the
secret itself, so that whatever listened on the port got it: a daemon of protocol 1 is
refused by a newer shim as "not proven" and left to exit by itself when idle (the secret
is never handed to a peer that has not proved itself, and a protocol 1 daemon cannot), and
a protocol 1 shim's hello is refused by a newer daemon with both versions named. On the
Unix socket nothing else changed: a newer shim retires a protocol 1 daemon with `stop`.

A command is added without a new version: an older shim never sends it, and an older
daemon answers it with an "Unknown daemon request" error, which a newer shim takes as its
cue to retire that daemon (shim/connection.py, ask_current_daemon). `page` (the status
page, started on first ask) answers `{"ok": true, "url": ..., "version": ..., "pid": ...}`.
`join-login` (`mcp-bridge login` in a terminal) answers `{"ok": true, "joined": false}` when
the daemon runs no login for that server, else `{"ok": true, "joined": true}` and the lines
of login_join.py.
"""

from __future__ import annotations

import json
from typing import NamedTuple

__all__ = [
    "PROTOCOL_VERSION",
    "CommandHello",
    "HelloError",
    "JoinLoginHello",
    "SessionHello",
    "check_version",
    "encode",
    "error_reply",
    "hello_object",
    "is_digest",
    "ok_reply",
    "parse_hello",
    "parse_reply",
]

PROTOCOL_VERSION = 2
_KEY = "mcp-bridge"
COMMANDS = ("status", "stop", "page")
JOIN_LOGIN = "join-login"
_PROOF = "proof"
_PROOF_STEP = (
    "mcp-bridge's own commands make it from the secret in daemon.endpoint, in "
    "mcp-bridge's state directory, which a daemon rewrites each time it starts"
)


class HelloError(Exception):
    """The other side's first line is not a hello we can accept; the text says why.
    `is_config`: the daemon refused the server profile (a flag the user must fix)."""

    def __init__(self, what: str, next_step: str = "", *, is_config: bool = False) -> None:
        super().__init__(f"{what}. {next_step}" if next_step else what)
        self.what = what
        self.next_step = next_step
        self.is_config = is_config


# NamedTuples, not dataclasses: the shim imports this module, and `dataclasses` costs it
# ~10 ms and ~1.4 MB at start.


class SessionHello(NamedTuple):
    """Bridge a local client to the server this profile (ServerProfile JSON) names."""

    profile: dict[str, object]  # headers and a client secret inside: never shown

    def __repr__(self) -> str:
        return "SessionHello(profile=...)"


class CommandHello(NamedTuple):
    command: str


class JoinLoginHello(NamedTuple):
    """Join the login the daemon runs for the server at `url`, as a person asking for it."""

    url: str


def encode(message: dict[str, object]) -> bytes:
    return json.dumps({_KEY: PROTOCOL_VERSION, **message}, separators=(",", ":")).encode()


def error_reply(what: str, next_step: str = "", *, is_config: bool = False) -> bytes:
    return encode({"error": what, "next_step": next_step, "config": is_config})


def ok_reply(**details: object) -> bytes:
    return encode({"ok": True, **details})


def parse_hello(
    line: bytes, *, proof: bytes | None = None
) -> SessionHello | CommandHello | JoinLoginHello:
    """The daemon's reading of a shim's hello. Raises HelloError.

    `proof`: the MAC the hello must carry (loopback TCP: proof.answer_challenge made it),
    checked first. `stop` is understood from any version, now and in every later
    protocol: it is how a newer shim retires a daemon left running by an older mcp-bridge."""
    role = "The hello to the daemon"
    doc = hello_object(line, role)
    if proof is not None:
        _check_proof(doc.get(_PROOF), proof)
    if doc.get("command") == "stop":
        return CommandHello("stop")
    check_version(doc, role)
    if "session" in doc:
        profile = doc["session"]
        if not isinstance(profile, dict):
            raise HelloError("The session hello carries no server profile")
        return SessionHello(profile)
    command = doc.get("command")
    if command in COMMANDS:
        assert isinstance(command, str)
        return CommandHello(command)
    if command == JOIN_LOGIN:
        url = doc.get("url")
        if not isinstance(url, str):
            raise HelloError("The join-login hello names no server URL")
        return JoinLoginHello(url)
    known = ", ".join((*COMMANDS, JOIN_LOGIN))
    raise HelloError(f"Unknown daemon request {command!r}", f"Use one of {known}")


def parse_reply(line: bytes) -> dict[str, object]:
    """The shim's reading of the daemon's reply: its fields when ok. Raises HelloError
    with the daemon's own message and next step when it refused."""
    doc = _versioned(line, "The daemon's reply")
    if doc.get("ok") is True:
        return doc
    what = doc.get("error")
    next_step = doc.get("next_step")
    raise HelloError(
        what if isinstance(what, str) else "The daemon refused without a reason",
        next_step if isinstance(next_step, str) else "",
        is_config=doc.get("config") is True,
    )


def is_digest(given: object, expected: bytes) -> bool:
    """Whether `given` (a field of a line) is the hex of `expected`, compared in constant
    time."""
    if not isinstance(given, str):
        return False
    import hmac  # loopback TCP only: a shim on the Unix socket never pays for it

    # Bytes, compared in constant time; surrogatepass: JSON may carry a lone surrogate.
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.hex().encode())


def _check_proof(given: object, expected: bytes) -> None:
    if given is None:
        raise HelloError("The hello carries no proof of the daemon secret", _PROOF_STEP)
    if not is_digest(given, expected):
        raise HelloError("The hello's proof does not match this daemon's secret", _PROOF_STEP)


def _versioned(line: bytes, role: str) -> dict[str, object]:
    doc = hello_object(line, role)
    check_version(doc, role)
    return doc


def hello_object(line: bytes, role: str) -> dict[str, object]:
    """`line` as a JSON object that names the protocol (its version unchecked). Raises
    HelloError; `role` names the line in the message."""
    try:
        doc = json.loads(line)
    except (ValueError, RecursionError):
        raise HelloError(f"{role} is not JSON: {line[:60]!r}") from None
    if not isinstance(doc, dict) or _KEY not in doc:
        raise HelloError(f"{role} is not an mcp-bridge hello: {line[:60]!r}")
    return doc


def check_version(doc: dict[str, object], role: str) -> None:
    version = doc[_KEY]
    if version != PROTOCOL_VERSION:
        raise HelloError(
            f"{role} speaks daemon protocol {version!r}; this side speaks {PROTOCOL_VERSION}",
            "An mcp-bridge upgrade left an old daemon running: run `mcp-bridge daemon stop`",
        )
