"""The device grant's steps (RFC 8628, `--device`) alone, no sockets: the device answer,
the default interval, and a poll that ends on expired_token or access_denied."""

from __future__ import annotations

import pytest

from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.device_grant import (
    DEVICE_CODE_GRANT,
    DeviceAuthorization,
    poll_device_token,
    request_device_code,
)
from mcp_bridge.auth.errors import AuthError, AuthorizationDenied, AuthResponseInvalid
from mcp_bridge.auth.http_step import HttpResponse
from mcp_bridge.auth.metadata import AuthServerMetadata

METADATA = AuthServerMetadata(
    issuer="https://as.example",
    authorization_endpoint="https://as.example/authorize",
    token_endpoint="https://as.example/token",
    device_authorization_endpoint="https://as.example/device",
)
CLIENT = ClientRegistration("https://as.example", "cid", RegistrationMethod.DCR, "none")


def test_a_device_answer_without_a_user_code_is_refused() -> None:
    step = request_device_code(
        METADATA, CLIENT, scopes=("mcp",), resource="https://rs.example/mcp", now=0.0
    )
    request = next(step)
    assert request.form() == {
        "resource": "https://rs.example/mcp",
        "scope": "mcp",
        "client_id": "cid",
    }
    doc = {"device_code": "d", "verification_uri": "https://as.example/activate"}
    with pytest.raises(AuthResponseInvalid, match="user_code"):
        step.send(HttpResponse.of_json(doc))


def test_the_interval_defaults_to_five_seconds() -> None:
    step = request_device_code(METADATA, CLIENT, scopes=(), resource="https://rs/mcp", now=100.0)
    next(step)
    doc = {"device_code": "dev-secret-123", "user_code": "U", "verification_uri": "https://as/a"}
    with pytest.raises(StopIteration) as done:
        step.send(HttpResponse.of_json(doc))
    device: DeviceAuthorization = done.value.value
    assert device.interval_s == 5.0
    assert device.expires_at > 100.0
    assert "dev-secret-123" not in repr(device)


@pytest.mark.parametrize(
    ("error", "raised"), [("expired_token", AuthError), ("access_denied", AuthorizationDenied)]
)
def test_a_poll_ends_on_expired_or_denied(error: str, raised: type[AuthError]) -> None:
    device = DeviceAuthorization("d", "U", "https://as/a", None, expires_at=1e12, interval_s=0)
    step = poll_device_token(METADATA, CLIENT, device, resource="https://rs/mcp", scopes=(), now=0)
    assert next(step).form()["grant_type"] == DEVICE_CODE_GRANT
    with pytest.raises(raised):
        step.send(HttpResponse.of_json({"error": error}, status=400))
