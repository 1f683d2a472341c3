"""The OAuth-protected demo MCP server: the resource server (RS) in front of which the demo
authorization server (auth_server.py) hands out tokens; one process, one provider.

An SDK `MCPServer` (the demo tools of tools.py, plus `admin_echo` and `whoami`) with bearer
auth (RFC 8707 audience checked), wrapped by an edge that adds step-up 403s with `scope=`
(the SDK's middleware omits it) and the hostile PRM modes (auth_modes.py), and in `dpop`
mode by the DPoP edge (dpop_edge.py). With `auth_required=False` the RS serves everyone and
its tools say "Unauthorized" instead.
"""

from __future__ import annotations

import json
from typing import Any

from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.middleware.bearer_auth import RequireAuthMiddleware
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.routes import build_resource_metadata_url
from mcp.server.auth.settings import AuthSettings
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.extension import Extension
from mcp_types import CallToolRequestParams, CallToolResult, TextContent
from pydantic import AnyHttpUrl
from starlette.applications import Starlette
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from mcp_bridge.demo.asgi import ASGIApp, Message, Receive, Scope, Send, read_body, replay
from mcp_bridge.demo.auth_modes import BASE_SCOPE, PRIVATE_REDIRECT_HOST
from mcp_bridge.demo.auth_provider import FixtureProvider
from mcp_bridge.demo.dpop_edge import dpop_resource_edge
from mcp_bridge.demo.tools import build_server

__all__ = ["build_rs_app"]


class FixtureTokenVerifier:
    def __init__(self, provider: FixtureProvider) -> None:
        self.provider = provider

    async def verify_token(self, token: str) -> AccessToken | None:
        return await self.provider.load_access_token(token)


def build_rs_app(provider: FixtureProvider, mcp_url: str) -> ASGIApp:
    settings = AuthSettings(
        issuer_url=provider.issuer,  # type: ignore[arg-type]  # a str: no trailing slash added
        resource_server_url=mcp_url,  # type: ignore[arg-type]
        required_scopes=[BASE_SCOPE],
        validate_token_resource=True,
    )
    optional = not provider.modes.auth_required
    server = build_server(
        "mcp-bridge-demo-protected",
        token_verifier=FixtureTokenVerifier(provider),
        auth=settings,
        extensions=[UnauthorizedWithoutToken()] if optional else [],
    )

    @server.tool()
    def admin_echo(text: str) -> str:
        """Echo the text back; needs the mcp:admin scope (step-up)."""
        return f"admin: {text}"

    @server.tool()
    def whoami() -> dict[str, Any]:
        """The client id and scopes of the token this call was made with."""
        token = get_access_token()
        return {"client_id": token.client_id, "scopes": token.scopes} if token else {}

    inner = server.streamable_http_app(json_response=provider.modes.json_response)
    if optional:
        serve_without_token(inner)
    edge = resource_edge(inner, provider, mcp_url)
    return dpop_resource_edge(edge, provider) if provider.modes.dpop else edge


class UnauthorizedWithoutToken(Extension):
    """`auth_required=False`: a tool called without a valid token answers as a TypeScript
    tool checking `extra.authInfo` does, with an isError "Unauthorized" result."""

    identifier = "dev.mcp-bridge/optional-auth"

    async def intercept_tool_call(
        self,
        params: CallToolRequestParams,
        ctx: ServerRequestContext[Any, Any],
        call_next: CallNext,
    ) -> HandlerResult:
        if get_access_token() is None:
            return CallToolResult(
                content=[TextContent(type="text", text="Unauthorized")], is_error=True
            )
        return await call_next(ctx)


def serve_without_token(app: Starlette) -> None:
    """`auth_required=False`: unwrap the SDK's RequireAuthMiddleware from the MCP route, so
    no request meets a 401. The bearer is still read (the app's AuthenticationMiddleware),
    so a valid token reaches the tools, and the PRM routes stay."""
    for index, route in enumerate(app.router.routes):
        if isinstance(route, Route) and isinstance(route.endpoint, RequireAuthMiddleware):
            app.router.routes[index] = Route(route.path, endpoint=route.endpoint.app)


def resource_edge(app: ASGIApp, provider: FixtureProvider, mcp_url: str) -> ASGIApp:
    """Hostile PRM modes, and step-up: a 403 `insufficient_scope` naming the scopes."""
    modes = provider.modes
    prm_url = str(build_resource_metadata_url(AnyHttpUrl(mcp_url)))
    prm_paths = {
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-protected-resource/mcp",
    }

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        send = counting_401s(send, provider)
        path = scope["path"]
        if path in prm_paths and (
            modes.metadata_redirects_to_private or modes.prm_resource_mismatch
        ):
            if modes.metadata_redirects_to_private:
                response: Response = RedirectResponse(f"http://{PRIVATE_REDIRECT_HOST}{path}", 302)
            else:
                response = JSONResponse(
                    {
                        "resource": mcp_url.replace("/mcp", "/not-this-server"),
                        "authorization_servers": [provider.issuer],
                        "scopes_supported": [BASE_SCOPE],
                        "bearer_methods_supported": ["header"],
                    }
                )
            await response(scope, receive, send)
            return
        if path != "/mcp" or scope["method"] != "POST" or not modes.step_up_tools:
            await app(scope, receive, send)
            return
        body = await read_body(receive)
        needed = await missing_scope(provider, scope, body)
        if needed is None:
            await app(scope, replay(body, receive), send)
            return
        provider.stats["step_up_challenges"] += 1
        challenge = (
            f'Bearer error="insufficient_scope", scope="{BASE_SCOPE} {needed}", '
            f'resource_metadata="{prm_url}", error_description="This tool needs {needed}"'
        )
        response = JSONResponse(
            {"error": "insufficient_scope", "error_description": f"This tool needs {needed}"},
            403,
            headers={"WWW-Authenticate": challenge},
        )
        await response(scope, receive, send)

    return edge


def counting_401s(send: Send, provider: FixtureProvider) -> Send:
    async def counted(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 401:
            provider.stats["unauthorized"] += 1
        await send(message)

    return counted


async def missing_scope(provider: FixtureProvider, scope: Scope, body: bytes) -> str | None:
    """The step-up scope a valid token lacks for a gated tools/call in `body`, else None
    (invalid tokens are left to the SDK: its 401, or anonymous service when auth is optional)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return None
    messages = parsed if isinstance(parsed, list) else [parsed]
    needed = [
        provider.modes.step_up_scope(str(m.get("params", {}).get("name")))
        for m in messages
        if isinstance(m, dict)
        and m.get("method") == "tools/call"
        and isinstance(m.get("params"), dict)
    ]
    needed_scopes = [s for s in needed if s]
    if not needed_scopes:
        return None
    headers = dict(scope["headers"])
    authorization = headers.get(b"authorization", b"").decode("latin-1")
    if not authorization.lower().startswith("bearer "):
        return None
    token = await provider.load_access_token(authorization[7:])
    if token is None:
        return None
    lacking = [s for s in needed_scopes if s not in token.scopes]
    return lacking[0] if lacking else None
