"""The vocabulary of `doctor`: the steps in the order a user would debug them by hand, what
each needs before it can say anything, and a Finding per step.

Pure. A step that cannot run because one it needs did not pass is skipped, and blocks the
steps that need it in turn; a step that does not apply (TLS for plain http, OAuth for a
server that needs no sign-in) is skipped without blocking anything.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from mcp_bridge.errors import BridgeError

__all__ = ["NEEDS", "STEPS", "Finding", "Ledger", "Outcome", "exit_code"]


class Outcome(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skip"


# Every step, in the order they are shown.
STEPS = (
    "profile",  # the URL or servers.toml name, and the flags: what `run` would use
    "proxy",  # which proxy variable applies to this URL
    "dns",  # the server's (or the proxy's) host name resolves
    "connect",  # a TCP connection to it
    "tls",  # the certificate, checked as `run` checks it (the OS trust store)
    "transport",  # which MCP era and transport the server speaks
    "challenge",  # the answer to a request without a token: 401 and its WWW-Authenticate
    "resource-metadata",  # RFC 9728 protected-resource metadata
    "auth-server-metadata",  # RFC 8414 / OIDC authorization-server metadata
    "client-registration",  # the client id a login would use
    "pkce",  # S256 advertised
    "redirect",  # the loopback redirect URI and its port
    "keyring",  # the vault's key source, in this environment
    "keyring-host-env",  # the same in a desktop client's thin environment
    "login",  # a stored login for this server, and when its access token expires
    "daemon",  # whether the per-user daemon runs
)

# What each step needs to have passed (or not to apply) before it can run.
NEEDS: dict[str, tuple[str, ...]] = {
    "proxy": ("profile",),
    "dns": ("proxy",),
    "connect": ("dns",),
    "tls": ("connect",),
    "transport": ("tls",),
    "challenge": ("tls",),
    "resource-metadata": ("challenge",),
    "auth-server-metadata": ("resource-metadata",),
    "client-registration": ("auth-server-metadata",),
    "pkce": ("auth-server-metadata",),
    "redirect": ("resource-metadata",),
    "login": ("keyring",),
}


@dataclass(frozen=True, slots=True)
class Finding:
    """What one step found: a line of what it saw and, when it failed, what to do next.
    Never a token or a secret."""

    step: str
    outcome: Outcome
    detail: str
    next_step: str = ""

    @classmethod
    def passed(cls, step: str, detail: str) -> Finding:
        return cls(step, Outcome.PASS, detail)

    @classmethod
    def failed(cls, step: str, detail: str, next_step: str) -> Finding:
        return cls(step, Outcome.FAIL, detail, next_step)

    @classmethod
    def not_applicable(cls, step: str, detail: str) -> Finding:
        return cls(step, Outcome.SKIP, detail)

    @classmethod
    def from_error(cls, step: str, error: BridgeError, next_step: str = "") -> Finding:
        """A failure in the error's own words (they name the next step already)."""
        return cls(step, Outcome.FAIL, error.what, next_step or error.next_step)

    def to_json(self) -> dict[str, str]:
        doc = {"step": self.step, "outcome": self.outcome.value, "detail": self.detail}
        if self.next_step:
            doc["next_step"] = self.next_step
        return doc


@dataclass
class Ledger:
    """Which steps did not pass in a way that stops the steps needing them."""

    blocked: set[str] = field(default_factory=set)

    def blocker(self, step: str) -> str | None:
        """The first step `step` needs that is blocked, or None when it may run."""
        return next((need for need in NEEDS.get(step, ()) if need in self.blocked), None)

    def skipped(self, step: str, blocker: str) -> Finding:
        """The finding for a step that cannot run; it blocks the steps needing it too."""
        self.blocked.add(step)
        return Finding(step, Outcome.SKIP, f"not checked: it needs {blocker}, which did not pass")

    def record(self, finding: Finding) -> Finding:
        if finding.outcome is Outcome.FAIL:
            self.blocked.add(finding.step)
        return finding


def exit_code(findings: Iterable[Finding]) -> int:
    """1 when any step failed, else 0."""
    return 1 if any(f.outcome is Outcome.FAIL for f in findings) else 0
