"""When the token manager renews access, and how long it waits after a failure: the pure
half of token_manager.py's refresh rules (docs/oauth-in-the-wild.md §5). Times are seconds;
the clock is the caller's.

- ahead of expiry: MARGIN_S before `expires_at`, or a fifth of the lifetime for short
  tokens (`refresh_margin_s`);
- after a failure: 2, 4, 8 ... s up to MAX_BACKOFF_S over consecutive failures, or as long
  as the AS's Retry-After asks (`backoff_s`), and what a call told to wait meanwhile hears
  (`backoff_error`); `RefreshBackoff` keeps that count for one server's tokens;
- another process's fresh tokens in the vault are used, never replaced (`renewed_elsewhere`).
"""

from __future__ import annotations

from mcp_bridge.auth.auth_records import StoredTokens
from mcp_bridge.auth.errors import AuthError, AuthServerUnavailable
from mcp_bridge.auth.token_set import TokenSet

__all__ = [
    "MARGIN_S",
    "MAX_BACKOFF_S",
    "SHORT_TOKEN_FRACTION",
    "RefreshBackoff",
    "backoff_error",
    "backoff_s",
    "refresh_margin_s",
    "renewed_elsewhere",
]

MARGIN_S = 60.0  # refresh this long before expiry...
SHORT_TOKEN_FRACTION = 0.2  # ...or this share of the lifetime, whichever is shorter
MAX_BACKOFF_S = 300.0
_MAX_BACKOFF_EXPONENT = 16  # 2.0**1024 raises OverflowError; 2**16 s is past the cap anyway


def refresh_margin_s(tokens: TokenSet, received_at: float | None) -> float:
    """How long before `expires_at` to refresh: MARGIN_S, or a fifth of a short lifetime
    (a 2-second token refreshed 60 s early would be refreshed on every call)."""
    if tokens.expires_at is None or received_at is None:
        return MARGIN_S
    lifetime = max(tokens.expires_at - received_at, 0.0)
    return min(MARGIN_S, SHORT_TOKEN_FRACTION * lifetime)


def backoff_s(failures: int, retry_after_s: float | None) -> float:
    """How long to wait after the `failures`-th consecutive failed refresh: the AS's
    Retry-After when it gave one, else 2**failures s up to MAX_BACKOFF_S."""
    exponent = min(failures, _MAX_BACKOFF_EXPONENT)
    return retry_after_s or min(MAX_BACKOFF_S, 2.0**exponent)


def backoff_error(mcp_url: str, last: AuthError | None, wait_s: float) -> AuthError:
    """The error for a call that finds the token expired while the refresh backs off for
    `wait_s` more seconds after `last`."""
    if last is None or isinstance(last, AuthServerUnavailable):
        return AuthServerUnavailable(
            f"The authorization server of {mcp_url} failed to renew access; "
            f"the next try is in {wait_s:.0f} s",
            next_step="Retry shortly",
            retry_after_s=wait_s,
        )
    # A refusal is not an outage: keep its kind and its next step (not "retry shortly"),
    # or the caller would wait for something that does not pass by itself.
    return type(last)(f"{last.what}; the next try is in {wait_s:.0f} s", next_step=last.next_step)


def renewed_elsewhere(record: StoredTokens, known: TokenSet | None, now: float) -> bool:
    """The vault holds other tokens than the ones we know, and they are good for a while."""
    stored = record.tokens
    is_other = known is None or stored.access_token != known.access_token
    margin_s = refresh_margin_s(stored, record.received_at)
    return is_other and not stored.is_expired(now, margin_s=margin_s)


class RefreshBackoff:
    """The back-off of one server's refreshes: how many failed in a row, the time before
    which none is tried (on the caller's clock), and why the last one failed."""

    def __init__(self) -> None:
        self.failures = 0
        self.retry_at = 0.0
        self.last_failure: AuthError | None = None

    def failed(self, failure: AuthError, now: float) -> float:
        """Push the next refresh back by `backoff_s` (the AS's Retry-After, when an
        outage came with one); the delay chosen."""
        self.failures += 1
        retry_after_s = (
            failure.retry_after_s if isinstance(failure, AuthServerUnavailable) else None
        )
        delay = backoff_s(self.failures, retry_after_s)
        self.retry_at = now + delay
        self.last_failure = failure
        return delay

    def defer(self, until: float) -> None:
        """No refresh before `until`, for a failure that is not the AS's (the vault)."""
        self.retry_at = until

    def succeeded(self) -> None:
        self.failures, self.retry_at, self.last_failure = 0, 0.0, None

    def error(self, mcp_url: str, now: float) -> AuthError:
        """What a call that finds the token expired during the back-off hears."""
        return backoff_error(mcp_url, self.last_failure, self.retry_at - now)
