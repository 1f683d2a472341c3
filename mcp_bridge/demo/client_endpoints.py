"""The authorization server's client-facing endpoints, seen before the SDK's routes:
/authorize reading Auth0's `audience` in `audience_param` mode; and the POST endpoints:
token requests counted and recorded (never a secret), the slow and failing token modes,
the JSON-only token endpoint (JSON read into the form the SDK's handlers parse), the grants
the SDK does not know (machine_grants.py), DCR forced
to hand out a secret, and two gaps of SDK 2.3.0 filled (a public client's revocation
without `client_secret`; a Basic-authenticated client's id missing from the form).
"""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import parse_qsl, unquote_plus, urlencode

from starlette.responses import JSONResponse, PlainTextResponse, Response

from mcp_bridge.demo.asgi import ASGIApp, Receive, Scope, Send, read_body, replay
from mcp_bridge.demo.auth_provider import RESOURCE_REFUSAL, FixtureProvider
from mcp_bridge.demo.machine_grants import machine_grant_response, machine_revocation_response

FORM_TYPE = b"application/x-www-form-urlencoded"

__all__ = ["client_auth", "client_endpoints_edge", "with_basic_client_id"]


def client_endpoints_edge(app: ASGIApp, provider: FixtureProvider) -> ASGIApp:
    """Counts and records token requests (no secrets), then applies the slow/failing modes
    and the JSON-only one; lets public clients revoke without a `client_secret` field;
    forces a secret on DCR."""

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        if provider.modes.audience_param and scope["type"] == "http":
            scope = with_audience_as_resource(scope)
        path = scope["path"] if scope["type"] == "http" and scope["method"] == "POST" else None
        if path == "/register" and provider.modes.registration_forces_secret:
            await app(scope, replay(with_forced_secret(await read_body(receive)), receive), send)
            return
        if path not in ("/token", "/revoke"):
            await app(scope, receive, send)
            return
        body, refusal = form_body(provider, scope, await read_body(receive))
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        if provider.modes.token_json_only:
            scope = {**scope, "headers": with_form_type(scope["headers"])}
        if path == "/revoke":
            form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
            machine = await machine_revocation_response(provider, form, dict(scope["headers"]))
            if machine is not None:
                await machine(scope, receive, send)
                return
            body = with_basic_client_id(body, scope)
            if b"client_secret=" not in body:
                # SDK 2.3.0's RevocationRequest requires the field, but a public client
                # (RFC 7009 §2.1 + RFC 6749 §2.3) sends only client_id: accept that.
                body += b"&client_secret="
            await app(scope, replay(body, receive), send)
            return
        form = dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))
        provider.stats["token_requests"] += 1
        provider.last["token_request"] = {
            name: form.get(name)
            for name in ("grant_type", "client_id", "resource", "scope", "redirect_uri")
        } | {"has_code_verifier": "code_verifier" in form, "client_auth": client_auth(form, scope)}
        if provider.modes.token_delay_s:
            await asyncio.sleep(provider.modes.token_delay_s)
        refusal = token_refusal(provider, form) or machine_grant_response(
            provider, form, dict(scope["headers"])
        )
        if refusal is not None:  # or the answer to a grant the SDK does not know
            await refusal(scope, receive, send)
            return
        await app(scope, replay(with_basic_client_id(body, scope), receive), send)

    return edge


def with_audience_as_resource(scope: Scope) -> Scope:
    """`audience_param`, as Auth0: a GET /authorize is for the API its `audience` names,
    whatever RFC 8707 `resource` says; the SDK's handler, which binds the code (and the
    tokens) to `resource`, is shown the one in place of the other."""
    if scope["path"] != "/authorize" or scope["method"] != "GET":
        return scope
    query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    audience = [value for name, value in query if name == "audience"]
    kept = [(name, value) for name, value in query if name not in ("resource", "audience")]
    kept += [("resource", audience[0])] if audience else []
    return {**scope, "query_string": urlencode(kept).encode("latin-1")}


def token_refusal(provider: FixtureProvider, form: dict[str, str]) -> Response | None:
    """The answer a token request gets before the SDK sees it, in the modes that refuse
    some: `token_status`, and Entra's rules (`rejects_resource`, `refresh_requires_scope`)."""
    modes = provider.modes
    if modes.token_status is not None:
        failure = {"error": "server_error", "error_description": "the fixture was told to fail"}
        return JSONResponse(failure, modes.token_status)
    if modes.rejects_resource and form.get("resource"):
        provider.stats["resource_refusals"] += 1
        return JSONResponse({"error": "invalid_target", "error_description": RESOURCE_REFUSAL}, 400)
    is_refresh = form.get("grant_type") == "refresh_token"
    if modes.refresh_requires_scope and is_refresh and not form.get("scope"):
        description = "AADSTS90009: the refresh grant must name a scope"
        return JSONResponse({"error": "invalid_request", "error_description": description}, 400)
    return None


def with_forced_secret(body: bytes) -> bytes:
    """`registration_forces_secret`: as some real ASes do, the public client asked for
    `none` and gets client_secret_post."""
    try:
        metadata = json.loads(body)
    except ValueError:
        return body
    if not isinstance(metadata, dict):
        return body
    metadata["token_endpoint_auth_method"] = "client_secret_post"
    return json.dumps(metadata).encode()


def form_body(
    provider: FixtureProvider, scope: Scope, body: bytes
) -> tuple[bytes, Response | None]:
    """The form the SDK's handlers parse, from a form body or (`token_json_only`) a JSON
    object of strings; or the refusal of a form the mode does not read. Token requests are
    counted by kind: `token_form_requests`, `token_json_requests`."""
    content_type = dict(scope["headers"]).get(b"content-type", b"").split(b";")[0].strip()
    is_json = content_type.lower() == b"application/json"
    if scope["path"] == "/token":
        provider.stats["token_json_requests" if is_json else "token_form_requests"] += 1
    if not provider.modes.token_json_only:
        return body, None
    if not is_json:
        if provider.modes.token_form_refusal == 500:
            return body, PlainTextResponse("Internal Server Error", 500)
        refusal = {"error": "invalid_request", "error_description": "expected a JSON body"}
        return body, JSONResponse(refusal, 400)
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if not isinstance(doc, dict) or not all(isinstance(v, str) for v in doc.values()):
        refusal = {"error": "invalid_request", "error_description": "expected a JSON object"}
        return body, JSONResponse(refusal, 400)
    return urlencode(doc).encode(), None


def with_form_type(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The request's headers saying the body is a form (it is now, whatever it came as)."""
    return [
        *((k, v) for k, v in headers if k.lower() != b"content-type"),
        (b"content-type", FORM_TYPE),
    ]


def client_auth(form: dict[str, str], scope: Scope) -> str:
    """How the client authenticated (RFC 6749 §2.3.1), never with what: "basic" (an HTTP
    Basic header), "post" (client_secret in the form), "private_key_jwt" (RFC 7523 §2.2)
    or "none" (a public client)."""
    authorization = dict(scope["headers"]).get(b"authorization", b"")
    if authorization.lower().startswith(b"basic "):
        return "basic"
    if "client_assertion" in form:
        return "private_key_jwt"
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
