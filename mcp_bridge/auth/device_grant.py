"""The OAuth device authorization grant (RFC 8628) as steps: for a login where no browser
can reach our loopback listener (SSH sessions, containers). The user opens a URL on any
device and types a short code; meanwhile we poll the token endpoint.

Pure (steps as in http_step.py; the clock is a parameter; the waiting between polls is the
caller's). `resource` is sent on both requests, as on every token request (MCP MUST), unless
the issuer's quirks say it refuses it. Both requests are sent as every grant is
(token_endpoint.post_grant): the issuer's quirks first, one retry to learn a new one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace

from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.discovery import AuthServerQuirks
from mcp_bridge.auth.dpop_proofs import DpopProofs
from mcp_bridge.auth.dynamic_registration import ClientMetadata
from mcp_bridge.auth.errors import (
    AuthError,
    AuthorizationDenied,
    AuthResponseInvalid,
    sanitize_remote_text,
)
from mcp_bridge.auth.http_step import Step, clamped, json_number, shown_json
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.scopes import scope_param
from mcp_bridge.auth.token_endpoint import post_grant, raise_token_endpoint_error
from mcp_bridge.auth.token_set import TokenSet, parse_token_response

__all__ = [
    "DEFAULT_INTERVAL_S",
    "DEVICE_CODE_GRANT",
    "MAX_EXPIRES_IN_S",
    "MAX_INTERVAL_S",
    "MIN_INTERVAL_S",
    "SLOW_DOWN_STEP_S",
    "DeviceAuthorization",
    "DeviceClientMetadata",
    "DevicePoll",
    "poll_device_token",
    "request_device_code",
]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL_S = 5.0  # RFC 8628 §3.2: when the AS does not say
SLOW_DOWN_STEP_S = 5.0  # RFC 8628 §3.5: slow_down adds 5 s to the interval
# The interval the AS asks for is kept within these: 0 would poll in a busy loop, and an
# hour would outlast the device code. RFC 8628 §3.5: polling faster than asked only earns
# slow_down, which adds to the interval.
MIN_INTERVAL_S = 1.0
MAX_INTERVAL_S = 60.0
# A device code is for a person at another device now; a longer expires_in is cut to this,
# an absent one (RFC 8628 §3.2 makes it REQUIRED) is taken as a sixth of it.
MAX_EXPIRES_IN_S = 3600.0


class DeviceClientMetadata(ClientMetadata):
    """Registration metadata that also asks for the device grant (RFC 8628 §3.4: a client
    uses the grant types it registered)."""

    __slots__ = ()

    def registration_request(self) -> dict[str, object]:
        doc = ClientMetadata.registration_request(self)
        doc["grant_types"] = ["authorization_code", "refresh_token", DEVICE_CODE_GRANT]
        return doc


@dataclass(frozen=True, slots=True)
class DeviceAuthorization:
    """RFC 8628 §3.2: what to show the user and what to poll with."""

    device_code: str = field(repr=False)
    user_code: str
    verification_uri: str
    verification_uri_complete: str | None
    expires_at: float  # epoch seconds
    interval_s: float
    # How the device request went through (JSON body, no `resource`): the polls start so.
    quirks: AuthServerQuirks = field(default_factory=AuthServerQuirks)


class DevicePoll(enum.Enum):
    PENDING = "authorization_pending"  # the user has not finished: poll again
    SLOW_DOWN = "slow_down"  # poll again, SLOW_DOWN_STEP_S later than before


def request_device_code(
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    *,
    scopes: tuple[str, ...],
    resource: str,
    now: float,
    quirks: AuthServerQuirks | None = None,
) -> Step[DeviceAuthorization]:
    """POST to the device authorization endpoint (RFC 8628 §3.1), the way `quirks` (the
    issuer's, as the vault remembers them) say."""
    endpoint = metadata.device_authorization_endpoint
    if endpoint is None:
        raise AuthError(
            f"The authorization server {metadata.issuer} offers no device login",
            next_step="Log in without --device (the browser login)",
        )
    form = [("resource", resource)]
    if (scope := scope_param(scopes)) is not None:
        form.append(("scope", scope))
    response, learned = yield from post_grant(endpoint, client, form, quirks or AuthServerQuirks())
    if not response.is_success:
        raise_token_endpoint_error(response, endpoint, "device authorization endpoint")
    doc = response.json(what="device authorization response")
    if not isinstance(doc, dict):
        doc = {}
    texts = {key: doc.get(key) for key in ("device_code", "user_code", "verification_uri")}
    if not all(isinstance(value, str) and value for value in texts.values()):
        raise AuthResponseInvalid(
            f"The device authorization response from {endpoint} lacks device_code, "
            "user_code or verification_uri",
            next_step="Tell the server's owner, or log in without --device",
        )
    complete = doc.get("verification_uri_complete")
    return DeviceAuthorization(
        device_code=str(texts["device_code"]),
        user_code=sanitize_remote_text(texts["user_code"], max_chars=40),
        verification_uri=str(texts["verification_uri"]),
        verification_uri_complete=complete if isinstance(complete, str) and complete else None,
        expires_at=now + _code_lifetime_s(doc.get("expires_in"), endpoint),
        interval_s=_interval_s(doc.get("interval")),
        quirks=learned,
    )


def _code_lifetime_s(expires_in: object, endpoint: str) -> float:
    """The device code's lifetime (RFC 8628 §3.2 `expires_in`), at most MAX_EXPIRES_IN_S.
    Zero, negative or not a number is refused: the code would be dead before the user
    could type it, and the login would only find that out after the first poll."""
    if expires_in is None:
        return MAX_EXPIRES_IN_S / 6
    lifetime = json_number(expires_in)
    if lifetime is None or not lifetime > 0:
        raise AuthResponseInvalid(
            f"The device authorization response from {endpoint} has expires_in "
            f"{shown_json(expires_in)}; RFC 8628 §3.2 wants the device code's lifetime, "
            "a positive number of seconds",
            next_step="Tell the server's owner, or log in without --device",
        )
    return clamped(lifetime, 0.0, MAX_EXPIRES_IN_S)


def _interval_s(interval: object) -> float:
    """Seconds between polls (RFC 8628 §3.2 `interval`): any number is clamped to
    [MIN_INTERVAL_S, MAX_INTERVAL_S]; absent or not a number, the RFC's default 5 s.
    Nothing here is refused: the interval is the AS's wish, and slow_down (§3.5) tells us
    if we poll too often."""
    number = json_number(interval)
    if number is None:
        return DEFAULT_INTERVAL_S
    return clamped(number, MIN_INTERVAL_S, MAX_INTERVAL_S)


def poll_device_token(
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    device: DeviceAuthorization,
    *,
    resource: str,
    scopes: tuple[str, ...],
    now: float,
    use_id_token: bool = False,
    dpop: DpopProofs | None = None,
) -> Step[tuple[TokenSet | DevicePoll, AuthServerQuirks]]:
    """One poll of the token endpoint (RFC 8628 §3.4-3.5), sent the way `device.quirks`
    say: the tokens, or PENDING / SLOW_DOWN, with the quirks the next poll starts with.
    AuthorizationDenied when the user refused, AuthError when the code expired, and the
    token endpoint's usual errors otherwise. With `dpop`, each poll carries a fresh proof
    and the tokens may come back bound to its key (RFC 9449 §5), as a code exchange's."""
    form = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", device.device_code),
        ("resource", resource),
    ]
    endpoint = metadata.token_endpoint
    response, quirks = yield from post_grant(endpoint, client, form, device.quirks, dpop)
    if response.is_success:
        tokens = parse_token_response(
            response,
            issuer=metadata.issuer,
            resource=resource,
            requested_scopes=scopes,
            now=now,
            sent_dpop_proof=dpop is not None,
        )
        if use_id_token:
            tokens = tokens.sending_id_token(now)
        return replace(tokens, quirks=quirks), quirks
    doc = response.json_or_none()
    error = doc.get("error") if isinstance(doc, dict) else None
    match error:
        case "authorization_pending":
            return DevicePoll.PENDING, quirks
        case "slow_down":
            return DevicePoll.SLOW_DOWN, quirks
        case "access_denied":
            raise AuthorizationDenied(
                "The device login was refused", next_step="Run the login again", error=error
            )
        case "expired_token":
            raise AuthError(
                "The device code expired before the sign-in was finished",
                next_step="Run the login again and finish it sooner",
            )
    raise_token_endpoint_error(response, metadata.token_endpoint, "token endpoint")
