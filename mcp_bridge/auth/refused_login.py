"""A token refused as soon as a sign-in got it: the verdict, and the message that names
the likely causes and the fix.

When the resource answers 401 (`invalid_token`, or no Bearer error at all) to the request
retried with the very token a login produced moments ago, another login would only fetch
another token of the same kind and be refused again: the login loop users of other
bridges meet. (A 401 for a login's token that first worked is another story, a revocation
say, which a refresh or a login does fix: only the retry right after the login is judged.) The usual
causes are a token of the wrong kind or for the wrong audience (docs/oauth-in-the-wild.md
§7): the resource takes the OpenID Connect ID token (servers behind AWS Cognito, whose
access tokens carry no audience), or the AS issued the access token for no API (Auth0
issues an API token only when the authorization request names the API's `audience`).
Those are fixed by a flag, not by signing in again, so the verdict stands, for every
later 401 too, until a new login or new settings.

Pure: a clock is passed in; the provider (provider.py) holds one `FreshLoginWatch`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.errors import AuthError, sanitize_remote_text
from mcp_bridge.auth.token_set import TokenSet

__all__ = ["FRESH_LOGIN_S", "FreshLoginWatch", "refused_login_error"]

# How long after a login its tokens count as "just obtained": a client's first request
# follows a login within seconds; later, a 401 may have other causes (a revocation, a
# token that expired) that a refresh or a login does fix.
FRESH_LOGIN_S = 120.0


def refused_login_error(
    mcp_url: str, tokens: TokenSet, challenge: BearerChallenge | None
) -> AuthError:
    """The error for `tokens`, fresh from a login, refused by the server at `mcp_url`."""
    said = ""
    if challenge is not None and challenge.error_description:
        said = f' ("{sanitize_remote_text(challenge.error_description, max_chars=120)}")'
    what = (
        f"{mcp_url} refused the token a sign-in at {tokens.issuer} got moments ago "
        f"(HTTP 401{said}); signing in again would only get another token it refuses. "
    )
    if tokens.sends_id_token:
        return AuthError(
            what + "It was sent the ID token (--use-id-token); the likely cause is that it "
            "takes the access token",
            next_step=f"Run it without --use-id-token, then `mcp-bridge login {mcp_url}`",
        )
    if tokens.id_token is not None:
        return AuthError(
            what + "The likely causes: the server takes the OpenID Connect ID token rather "
            "than the access token (as servers behind AWS Cognito do), or the access token "
            "is not issued for this server",
            next_step="Add --use-id-token (to `mcp-bridge run`, or `mcp-bridge add NAME "
            f"{mcp_url} --use-id-token`), then `mcp-bridge login {mcp_url} --use-id-token`",
        )
    return AuthError(
        what + "The likely cause: the access token is not issued for this server's API "
        "(its audience); Auth0, for one, issues an API token only when the sign-in names "
        "the API with an `audience` parameter",
        next_step="Add --authorize-param audience=<the API identifier the authorization "
        f"server knows this server by>, then `mcp-bridge login {mcp_url}` with it",
    )


class FreshLoginWatch:
    """The last login's tokens and when they came, and the verdict once the server refused
    them (see the module docstring)."""

    def __init__(self, mcp_url: str, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._mcp_url = mcp_url
        self._clock = clock
        self._login: TokenSet | None = None
        self._login_at = 0.0
        self.verdict: AuthError | None = None

    def logged_in(self, tokens: TokenSet) -> None:
        """A login (here, or one another process made and this one adopted) produced
        `tokens`: what is judged from now on, and any earlier verdict is void."""
        self._login, self._login_at, self.verdict = tokens, self._clock(), None

    def forget(self) -> None:
        """New settings (another flag may be the fix): void the verdict."""
        self.verdict = None

    def judge(
        self, refused: TokenSet | None, challenge: BearerChallenge | None
    ) -> AuthError | None:
        """The verdict on a 401 to the retry after a login, for `refused` (the tokens it
        carried): the error to answer with, or None when they are not that login's
        tokens (a refresh's), or not fresh, and a refresh or a login may still help. A
        401 that names another error than invalid_token (invalid_request: a malformed
        request) is no judgement on the token."""
        if self.verdict is not None:
            return self.verdict
        login = self._login
        if login is None or refused is None or refused.bearer_token != login.bearer_token:
            return None
        if self._clock() - self._login_at > FRESH_LOGIN_S:
            return None
        if challenge is not None and challenge.error not in (None, "invalid_token"):
            return None
        self.verdict = refused_login_error(self._mcp_url, refused, challenge)
        return self.verdict
