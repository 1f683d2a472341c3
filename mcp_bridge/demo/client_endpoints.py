"""The authorization server's client-facing POST endpoints, seen before the SDK's routes:
token requests counted and recorded (never a secret), the slow and failing token modes,
DCR forced to hand out a secret, and two gaps of SDK 2.3.0 filled (a public client's
revocation without `client_secret`; a Basic-authenticated client's id missing from the form).
"""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import parse_qsl, unquote_plus, urlencode

from starlette.responses import JSONResponse

from mcp_bridge.demo.asgi import ASGIApp, Receive, Scope, Send, read_body, replay
from mcp_bridge.demo.auth_provider import FixtureProvider

__all__ = ["client_auth", "client_endpoints_edge", "with_basic_client_id"]


def client_endpoints_edge(app: ASGIApp, provider: FixtureProvider) -> ASGIApp:
    """Counts and records token requests (no secrets), then applies the slow/failing modes;
    lets public clients revoke without a `client_secret` field; forces a secret on DCR."""

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await app(scope, receive, send)
            return
        if scope["path"] == "/revoke":
            body = with_basic_client_id(await read_body(receive), scope)
            if b"client_secret=" not in body:
                # SDK 2.3.0's RevocationRequest requires the field, but a public client
                # (RFC 7009 §2.1 + RFC 6749 §2.3) sends only client_id: accept that.
                body += b"&client_secret="
            await app(scope, replay(body, receive), send)
            return
        if scope["path"] == "/register" and provider.modes.registration_forces_secret:
            body = await read_body(receive)
            try:
                metadata = json.loads(body)
            except ValueError:
                metadata = None
            if isinstance(metadata, dict):
                # As some real ASes do: the public client asked for `none`, it gets a secret.
                metadata["token_endpoint_auth_method"] = "client_secret_post"
                body = json.dumps(metadata).encode()
            await app(scope, replay(body, receive), send)
            return
        if scope["path"] != "/token":
            await app(scope, receive, send)
            return
        body = await read_body(receive)
        form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        provider.stats["token_requests"] += 1
        provider.last["token_request"] = {
            name: form.get(name)
            for name in ("grant_type", "client_id", "resource", "scope", "redirect_uri")
        } | {"has_code_verifier": "code_verifier" in form, "client_auth": client_auth(form, scope)}
        if provider.modes.token_delay_s:
            await asyncio.sleep(provider.modes.token_delay_s)
        if provider.modes.token_status is not None:
            response = JSONResponse(
                {"error": "server_error", "error_description": "the fixture was told to fail"},
                provider.modes.token_status,
            )
            await response(scope, receive, send)
            return
        await app(scope, replay(with_basic_client_id(body, scope), receive), send)

    return edge


def client_auth(form: dict[str, str], scope: Scope) -> str:
    """How the client authenticated (RFC 6749 §2.3.1), never with what: "basic" (an HTTP
    Basic header), "post" (client_secret in the form) or "none" (a public client)."""
    authorization = dict(scope["headers"]).get(b"authorization", b"")
    if authorization.lower().startswith(b"basic "):
        return "basic"
    return "post" if "client_secret" in form else "none"


def with_basic_client_id(body: bytes, scope: Scope) -> bytes:
    """The form, with the client id of an HTTP Basic header added when the form lacks one.
    A client authenticating with Basic need not repeat it in the form (RFC 6749 §2.3.1,
    §4.1.3), but SDK 2.3.0's ClientAuthenticator reads it from the form only."""
    form = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    if any(name == "client_id" for name, _ in form):
        return body
    authorization = dict(scope["headers"]).get(b"authorization", b"").decode("latin-1")
    if not authorization.lower().startswith("basic "):
        return body
    try:
        decoded = base64.b64decode(authorization[6:], validate=True).decode()
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return body  # the SDK refuses it with its own error
    client_id, colon, _ = decoded.partition(":")
    if not colon:
        return body
    return body + b"&" + urlencode({"client_id": unquote_plus(client_id)}).encode()
