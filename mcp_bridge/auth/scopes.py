"""Which scopes to ask for: the first authorization and step-up (MCP Authorization, "Scope
Selection Strategy" and "Step-Up Authorization Flow").

Pure. Scopes are kept as ordered tuples without duplicates; order only matters for
readable URLs and stable tests, never for meaning (RFC 6749 §3.3: a space-separated set).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from mcp_bridge.auth.discovery import AuthorizationContext
from mcp_bridge.auth.errors import AuthError
from mcp_bridge.auth.metadata import AuthServerMetadata, ProtectedResourceMetadata

__all__ = [
    "MAX_STEP_UPS",
    "OFFLINE_ACCESS",
    "OPENID",
    "StepUpBudget",
    "initial_scopes",
    "scope_param",
    "step_up_scopes",
    "with_offline_access",
]

OFFLINE_ACCESS = "offline_access"
OPENID = "openid"  # OpenID Connect: the scope that asks for an ID token


def _ordered_union(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(scope for group in groups for scope in group))


def initial_scopes(
    challenged: tuple[str, ...], resource_metadata: ProtectedResourceMetadata | None
) -> tuple[str, ...]:
    """MCP "Scope Selection Strategy": the challenge's `scope`, exactly (authoritative, no
    assumed set relationship with `scopes_supported`); else every PRM `scopes_supported`; else
    none (omit `scope`)."""
    if challenged:
        return _ordered_union(challenged)
    if resource_metadata is not None and resource_metadata.scopes_supported:
        return _ordered_union(resource_metadata.scopes_supported)
    return ()


def with_offline_access(scopes: tuple[str, ...], metadata: AuthServerMetadata) -> tuple[str, ...]:
    """Add `offline_access` (ask for a refresh token) only when the AS lists it in its
    `scopes_supported` (MCP Authorization, "Refresh Tokens": MAY; SEP-2207). Not added to an
    empty request: sending `scope=offline_access` alone would replace the AS's default scopes
    with that one."""
    if not scopes or OFFLINE_ACCESS not in metadata.scopes_supported:
        return scopes
    return _ordered_union(scopes, (OFFLINE_ACCESS,))


def step_up_scopes(previous: tuple[str, ...], challenged: tuple[str, ...]) -> tuple[str, ...]:
    """MCP "Step-Up Authorization Flow": re-authorize with the union of what was asked before
    and what the 403 `insufficient_scope` challenge names, so earlier grants are not lost."""
    return _ordered_union(previous, challenged)


MAX_STEP_UPS = 2  # step-up sign-ins per resource and scope set


class StepUpBudget:
    """At most MAX_STEP_UPS step-up sign-ins for one resource and scope set: an AS that
    never grants the scope a 403 asks for gets a clear error, not a loop of sign-ins
    (docs/oauth-in-the-wild.md §3)."""

    def __init__(self) -> None:
        self._spent: Counter[tuple[str, frozenset[str]]] = Counter()

    def spend(
        self,
        mcp_url: str,
        resource: str,
        previous: tuple[str, ...],
        challenged: tuple[str, ...],
    ) -> tuple[str, ...]:
        """The scopes of the next step-up sign-in (`step_up_scopes`); AuthError when the
        budget for them is spent."""
        wanted = step_up_scopes(previous, challenged)
        attempt = (resource, frozenset(wanted))
        if self._spent[attempt] >= MAX_STEP_UPS:
            raise AuthError(
                f"{mcp_url} still refuses this operation without scope "
                f"{' '.join(challenged) or '(unnamed)'} after {MAX_STEP_UPS} sign-ins "
                "asking for it; the authorization server does not grant it",
                next_step="Ask the server's owner for access, then run "
                f"`mcp-bridge login {mcp_url}`",
            )
        self._spent[attempt] += 1
        return wanted


def scope_param(scopes: tuple[str, ...]) -> str | None:
    """The `scope` parameter value, or None to omit it."""
    return " ".join(scopes) if scopes else None


def login_scopes(
    context: AuthorizationContext,
    *,
    previous: tuple[str, ...] = (),
    configured: tuple[str, ...] = (),
    offline: bool = True,
) -> tuple[str, ...]:
    """The scopes for a login, all rules applied: the user's `configured` ones (`--scope`)
    plus what a step-up challenge names (dropping the challenged scope makes the server
    answer 403 again); else the scope selection order for a first login, or the step-up
    union when `previous` (the scopes of the current grant) is given for a step-up; then,
    when `offline`, `offline_access` where the AS lists it (a grant that is simply made
    again needs no refresh token). Use the same tuple for DCR's `scope`."""
    if configured:
        scopes = step_up_scopes(configured, context.challenged_scopes)
    elif previous:
        scopes = step_up_scopes(previous, context.challenged_scopes)
    else:
        scopes = initial_scopes(context.challenged_scopes, context.resource_metadata)
    return with_offline_access(scopes, context.auth_server) if offline else scopes
