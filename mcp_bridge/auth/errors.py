"""The AuthError family: what went wrong in discovery, registration, login or token use,
grouped by who has to act next.

    AuthError
      UrlRefused              a URL broke the URL policy     -> the server's owner, or --allow-http
      DiscoveryFailed         no metadata where the spec says -> check the URL, tell the owner
        NoAuthorizationServer the server names no AS at all   -> a static token in --header
      AuthResponseInvalid     an AS/RS document is malformed  -> tell the server's owner
      AuthServerUnavailable   network, timeout, 5xx, 429      -> retry later (`retryable`)
      RegistrationFailed      no client id could be obtained  -> configure a client id
      ClientRejected          token endpoint: invalid_client  -> register again
      LoginRequired           token endpoint: invalid_grant   -> log in again (browser)
      CallbackRejected        state or iss check failed        -> start the login again
      AuthorizationDenied     the AS answered with an error    -> the user or the AS's owner

Messages never carry a token, a code, a verifier or a client secret. Text that came from a
server goes through `sanitize_remote_text` first: it may be long, multi-line or hostile.
"""

from __future__ import annotations

from mcp_bridge.errors import AuthError

__all__ = [
    "CLIENT_ID_STEP",
    "STATIC_TOKEN_STEP",
    "AuthError",
    "AuthResponseInvalid",
    "AuthServerUnavailable",
    "AuthorizationDenied",
    "CallbackRejected",
    "ClientRejected",
    "DiscoveryFailed",
    "LoginRequired",
    "NoAuthorizationServer",
    "RegistrationFailed",
    "UrlRefused",
    "sanitize_remote_text",
]

REMOTE_TEXT_MAX_CHARS = 200

# Next steps when no OAuth sign-in can start, naming the flags that get past it (`--header`
# on `run` and `add`: cli/server_flags.py; `--client-id`: cli/oauth_flags.py).
STATIC_TOKEN_STEP = (
    "Ask its owner for a token and pass it with --header 'Authorization: Bearer <token>'"
)
CLIENT_ID_STEP = (
    "register a client with its authorization server by hand and pass its id with "
    "--client-id (a secret in MCP_BRIDGE_CLIENT_SECRET)"
)


def sanitize_remote_text(text: object, *, max_chars: int = REMOTE_TEXT_MAX_CHARS) -> str:
    """Server-supplied text made safe to show: printable ASCII only (RFC 6749 §5.2 limits
    `error_description` to %x20-21 / %x23-5B / %x5D-7E anyway), one line, length-capped.

    A control character (C0, DEL, C1: what a terminal acts on, such as ESC or a newline)
    becomes a space, so a multi-line text stays readable on one line; any other character
    outside ASCII becomes "?" (bidi overrides and look-alike letters spoof what is shown).
    One character out for each character in, then cut to `max_chars` with "..." when the
    cap leaves room for it."""
    if not isinstance(text, str):
        return ""
    cleaned = "".join(_shown_as(ch) for ch in text[: max_chars + 1])
    if len(cleaned) <= max_chars:
        return cleaned
    if max_chars <= len(_ELLIPSIS):
        return cleaned[:max_chars]
    return cleaned[: max_chars - len(_ELLIPSIS)] + _ELLIPSIS


_ELLIPSIS = "..."


def _shown_as(ch: str) -> str:
    if " " <= ch <= "~":
        return ch
    if ch <= "\x1f" or "\x7f" <= ch <= "\x9f":
        return " "
    return "?"


class UrlRefused(AuthError):
    """A URL failed the URL policy (scheme, network zone, shape); nothing was sent to it."""


class DiscoveryFailed(AuthError):
    """Neither resource nor authorization-server metadata could be found."""


class NoAuthorizationServer(DiscoveryFailed):
    """The server's protected-resource metadata names no authorization server: it takes a
    token issued out of band (a static bearer token), and there is no OAuth sign-in to run."""


class AuthResponseInvalid(AuthError):
    """A metadata, registration or token response broke its RFC; it was not used."""


class AuthServerUnavailable(AuthError):
    """A network failure, timeout, 5xx, 429 or `temporarily_unavailable`: worth a retry."""

    retryable = True

    def __init__(self, what: str, *, next_step: str = "", retry_after_s: float | None = None):
        super().__init__(what, next_step=next_step)
        self.retry_after_s = retry_after_s


class RegistrationFailed(AuthError):
    """No client id: no pre-registration, no CIMD support, and DCR failed or is absent."""


class ClientRejected(AuthError):
    """The AS no longer knows our client (`invalid_client`): register again."""


class LoginRequired(AuthError):
    """The grant is dead (`invalid_grant`: code or refresh token expired/revoked): log in."""


class CallbackRejected(AuthError):
    """The authorization response failed `state` or `iss` validation; its code was not used."""


class AuthorizationDenied(AuthError):
    """The AS answered the authorization request with an error (RFC 6749 §4.1.2.1)."""

    def __init__(self, what: str, *, next_step: str = "", error: str = "") -> None:
        super().__init__(what, next_step=next_step)
        self.error = error

    @property
    def refuses_resource(self) -> bool:
        """RFC 8707 §2 `invalid_target`: the AS will not issue for the `resource` we named
        (Microsoft Entra ID, for anything but its app's ID URI). The same request without
        `resource` is worth one try (AuthServerQuirks.send_resource)."""
        return self.error == "invalid_target"
