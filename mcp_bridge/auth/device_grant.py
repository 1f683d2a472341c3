"""The OAuth device authorization grant (RFC 8628) as steps: for a login where no browser
can reach our loopback listener (SSH sessions, containers). The user opens a URL on any
device and types a short code; meanwhile we poll the token endpoint.

Pure (steps as in http_step.py; the clock is a parameter; the waiting between polls is the
caller's). `resource` is sent on both requests, as on every token request (A17).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from mcp_bridge.auth.errors import (
    AuthError,
    AuthorizationDenied,
    AuthResponseInvalid,
    sanitize_remote_text,
)
from mcp_bridge.auth.http_step import Step
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.registration import ClientMetadata, ClientRegistration
from mcp_bridge.auth.scopes import scope_param
from mcp_bridge.auth.token_endpoint import (
    TokenSet,
    client_authenticated_post,
    parse_token_response,
    raise_token_endpoint_error,
)

__all__ = [
    "DEVICE_CODE_GRANT",
    "DeviceAuthorization",
    "DeviceClientMetadata",
    "DevicePoll",
    "poll_device_token",
    "request_device_code",
]

DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL_S = 5.0  # RFC 8628 §3.2: when the AS does not say
SLOW_DOWN_STEP_S = 5.0  # RFC 8628 §3.5: slow_down adds 5 s to the interval
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
) -> Step[DeviceAuthorization]:
    """POST to the device authorization endpoint (RFC 8628 §3.1)."""
    endpoint = metadata.device_authorization_endpoint
    if endpoint is None:
        raise AuthError(
            f"The authorization server {metadata.issuer} offers no device login",
            next_step="Log in without --device (the browser login)",
        )
    form = [("resource", resource)]
    if (scope := scope_param(scopes)) is not None:
        form.append(("scope", scope))
    response = yield client_authenticated_post(endpoint, client, form)
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
    expires_in = doc.get("expires_in")
    interval = doc.get("interval")
    return DeviceAuthorization(
        device_code=str(texts["device_code"]),
        user_code=sanitize_remote_text(texts["user_code"], max_chars=40),
        verification_uri=str(texts["verification_uri"]),
        verification_uri_complete=complete if isinstance(complete, str) and complete else None,
        expires_at=now
        + (
            min(float(expires_in), MAX_EXPIRES_IN_S)
            if isinstance(expires_in, int | float) and expires_in > 0
            else MAX_EXPIRES_IN_S / 6
        ),
        interval_s=(
            float(interval)
            if isinstance(interval, int | float) and interval >= 0
            else DEFAULT_INTERVAL_S
        ),
    )


def poll_device_token(
    metadata: AuthServerMetadata,
    client: ClientRegistration,
    device: DeviceAuthorization,
    *,
    resource: str,
    scopes: tuple[str, ...],
    now: float,
) -> Step[TokenSet | DevicePoll]:
    """One poll of the token endpoint (RFC 8628 §3.4-3.5): the tokens, or PENDING /
    SLOW_DOWN. AuthorizationDenied when the user refused, AuthError when the code expired,
    and the token endpoint's usual errors otherwise."""
    form = [
        ("grant_type", DEVICE_CODE_GRANT),
        ("device_code", device.device_code),
        ("resource", resource),
    ]
    response = yield client_authenticated_post(metadata.token_endpoint, client, form)
    if response.is_success:
        return parse_token_response(
            response, issuer=metadata.issuer, resource=resource, requested_scopes=scopes, now=now
        )
    doc = response.json_or_none()
    error = doc.get("error") if isinstance(doc, dict) else None
    match error:
        case "authorization_pending":
            return DevicePoll.PENDING
        case "slow_down":
            return DevicePoll.SLOW_DOWN
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
