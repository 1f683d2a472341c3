"""The demo AS's token endpoint for the grants without a browser, in front of the SDK's
(which knows neither): the client credentials grant (OAuth 2.1 §4.2) and the JWT bearer
grant with an ID-JAG from the demo identity provider (enterprise_idp.py). Strict on
purpose, so the client's side is tested against every rule that can refuse it:

- client authentication by a secret (Basic or form) or a `private_key_jwt` assertion
  (RFC 7523 §3) whose signature, `iss` = `sub` = client id, `aud` (the issuer, or in
  `assertion_audience="token_endpoint"` mode only the token endpoint), `exp`, `iat` and
  unused `jti` are checked, against this AS's clock moved by `clock_skew_s`;
- an ID-JAG (the MCP Enterprise-Managed Authorization extension, §5 and §7) must carry
  the identity provider's signature, `typ` oauth-id-jag+jwt, `aud` this issuer,
  `resource` the demo MCP server, `client_id` the authenticated client, a live `exp` and
  an unused `jti`; its scopes cap the token's.

Signatures are checked with PyJWT (the SDK's own dependency): an implementation other than
the client's, so a signing mistake there cannot be mirrored here. Every refusal says which
rule failed, as a real server's error_description would, for the client to pass on.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

import jwt
from starlette.responses import JSONResponse, Response

from mcp_bridge.demo.auth_modes import ALL_SCOPES, BASE_SCOPE, ServiceClient

if TYPE_CHECKING:
    from mcp_bridge.demo.auth_provider import FixtureProvider

__all__ = [
    "ALGORITHMS",
    "CLIENT_ASSERTION_TYPE",
    "CLIENT_CREDENTIALS",
    "ID_JAG_TYP",
    "JWT_BEARER",
    "ClientRefused",
    "JtiLedger",
    "authenticate_client",
    "machine_grant_response",
    "oauth_error",
]

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
CLIENT_CREDENTIALS = "client_credentials"
ID_JAG_TYP = "oauth-id-jag+jwt"
ALGORITHMS = ["ES256", "RS256"]  # an allow-list: never `none`, never an HMAC
MAX_ASSERTION_LIFETIME_S = 300.0
MAX_FUTURE_IAT_S = 30.0


def oauth_error(error: str, description: str, status: int = 400) -> Response:
    """An RFC 6749 §5.2 error answer."""
    body = {"error": error, "error_description": description}
    return JSONResponse(body, status, headers={"Cache-Control": "no-store"})


class ClientRefused(Exception):
    """A token request refused; `response` is the answer."""

    def __init__(self, response: Response) -> None:
        super().__init__()
        self.response = response


@dataclass
class JtiLedger:
    """The `jti`s seen, until their `exp` (RFC 7523 §3, item 7; the extension's MUST)."""

    seen: dict[str, float] = field(default_factory=dict)

    def spend(self, jti: str, expires_at: float, now: float) -> bool:
        """False when `jti` was seen before (a replay); else remembers it."""
        for old in [j for j, until in self.seen.items() if until < now]:
            del self.seen[old]
        if jti in self.seen:
            return False
        self.seen[jti] = expires_at
        return True


def _checked_times(claims: Mapping[str, Any], now: float, what: str, error: str) -> float:
    expires = claims.get("exp")
    issued = claims.get("iat")
    if not isinstance(expires, int | float):
        raise ClientRefused(oauth_error(error, f"the {what} has no exp", _status(error)))
    if expires <= now:
        raise ClientRefused(
            oauth_error(error, f"the {what} expired {now - expires:.0f} s ago", _status(error))
        )
    if isinstance(issued, int | float):
        if issued > now + MAX_FUTURE_IAT_S:
            raise ClientRefused(
                oauth_error(error, f"the {what} was issued in the future (iat)", _status(error))
            )
        if expires - issued > MAX_ASSERTION_LIFETIME_S:
            raise ClientRefused(
                oauth_error(error, f"the {what} lives longer than 300 s", _status(error))
            )
    return float(expires)


def _status(error: str) -> int:
    return 401 if error == "invalid_client" else 400


def _verify_assertion(
    client: ServiceClient, assertion: str, audiences: Collection[str], ledger: JtiLedger, now: float
) -> None:
    """RFC 7523 §3 for a client assertion; ClientRefused (invalid_client) naming the rule."""
    if client.public_key_pem is None:
        raise ClientRefused(oauth_error("invalid_client", "this client has no key registered", 401))
    try:
        claims = jwt.decode(
            assertion,
            client.public_key_pem,
            algorithms=ALGORITHMS,
            audience=list(audiences),
            options={"verify_exp": False, "verify_iat": False, "require": ["iss", "sub", "aud"]},
        )
    except jwt.InvalidAudienceError:
        wanted = " or ".join(audiences)
        raise ClientRefused(
            oauth_error("invalid_client", f"the client assertion's aud must be {wanted}", 401)
        ) from None
    except jwt.PyJWTError as exc:
        raise ClientRefused(
            oauth_error("invalid_client", f"the client assertion is not valid: {exc}", 401)
        ) from None
    if claims["iss"] != client.client_id or claims["sub"] != client.client_id:
        raise ClientRefused(
            oauth_error("invalid_client", "the assertion's iss and sub must be the client id", 401)
        )
    expires = _checked_times(claims, now, "client assertion", "invalid_client")
    jti = claims.get("jti")
    if not isinstance(jti, str) or not ledger.spend(jti, expires, now):
        raise ClientRefused(
            oauth_error("invalid_client", "the client assertion's jti was used before", 401)
        )


def authenticate_client(
    clients: Collection[ServiceClient],
    form: Mapping[str, str],
    headers: Mapping[bytes, bytes],
    *,
    audiences: Collection[str],
    ledger: JtiLedger,
    now: float,
) -> ServiceClient:
    """The client a token request authenticates as (RFC 6749 §2.3.1, RFC 7523 §2.2);
    ClientRefused with a 401 invalid_client otherwise."""
    client_id, secret = _basic(headers.get(b"authorization", b"").decode("latin-1"))
    assertion = form.get("client_assertion")
    if assertion is not None:
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE:
            raise ClientRefused(oauth_error("invalid_client", "unknown client_assertion_type", 401))
        try:
            client_id = str(jwt.decode(assertion, options={"verify_signature": False})["sub"])
        except (jwt.PyJWTError, KeyError):
            raise ClientRefused(
                oauth_error("invalid_client", "the client assertion names no client", 401)
            ) from None
    client_id = client_id or form.get("client_id")
    secret = secret if secret is not None else form.get("client_secret")
    known = next((c for c in clients if c.client_id == client_id), None)
    if known is None:
        raise ClientRefused(oauth_error("invalid_client", "unknown client", 401))
    if assertion is not None:
        _verify_assertion(known, assertion, audiences, ledger, now)
    elif known.client_secret is None or secret is None:
        raise ClientRefused(oauth_error("invalid_client", "client authentication required", 401))
    elif not secrets.compare_digest(known.client_secret.encode(), secret.encode()):
        raise ClientRefused(oauth_error("invalid_client", "wrong client secret", 401))
    return known


def _basic(authorization: str) -> tuple[str | None, str | None]:
    if not authorization.lower().startswith("basic "):
        return None, None
    try:
        decoded = base64.b64decode(authorization[6:], validate=True).decode()
    except ValueError:
        return None, None
    client_id, _, secret = decoded.partition(":")
    return unquote_plus(client_id), unquote_plus(secret)


def _granted_scopes(requested: str | None, allowed: Collection[str]) -> list[str]:
    wanted = requested.split() if requested else [BASE_SCOPE]
    unknown = [scope for scope in wanted if scope not in allowed]
    if unknown:
        raise ClientRefused(oauth_error("invalid_scope", f"not granted: {' '.join(unknown)}"))
    return wanted


def machine_grant_response(
    provider: FixtureProvider, form: Mapping[str, str], headers: Mapping[bytes, bytes]
) -> Response | None:
    """The answer to a client credentials or JWT bearer token request; None for any
    other grant (the SDK's handler takes it)."""
    grant_type = form.get("grant_type")
    if grant_type not in (CLIENT_CREDENTIALS, JWT_BEARER):
        return None
    modes = provider.modes
    now = time.time() + modes.clock_skew_s
    token_endpoint = f"{provider.issuer}/token"
    audiences = [provider.issuer] if modes.assertion_audience == "issuer" else [token_endpoint]
    try:
        client = authenticate_client(
            modes.service_clients,
            form,
            headers,
            audiences=audiences,
            ledger=provider.assertion_jtis,
            now=now,
        )
        if grant_type not in client.grants:
            raise ClientRefused(
                oauth_error("unauthorized_client", f"{grant_type} is not allowed for this client")
            )
        resource = form.get("resource")
        if resource is not None and resource != provider.resource_url:
            raise ClientRefused(oauth_error("invalid_target", f"unknown resource {resource}"))
        if grant_type == CLIENT_CREDENTIALS:
            scopes = _granted_scopes(form.get("scope"), ALL_SCOPES)
            provider.stats["client_credentials_grants"] += 1
        else:
            scopes = _redeemed_scopes(provider, client, form, now)
            provider.stats["jwt_bearer_grants"] += 1
    except ClientRefused as refused:
        provider.stats["machine_grant_refusals"] += 1
        return refused.response
    # OAuth 2.1 §4.2.3: no refresh token for the client credentials grant; and none here
    # for an ID-JAG either, so the client must repeat the exchange (the IdP decides again).
    token = provider.tokens.mint(
        client.client_id, scopes, provider.resource_url, with_refresh=False
    )
    return JSONResponse(token.model_dump(exclude_none=True), headers={"Cache-Control": "no-store"})


async def machine_revocation_response(
    provider: FixtureProvider, form: Mapping[str, str], headers: Mapping[bytes, bytes]
) -> Response | None:
    """RFC 7009 revocation by a service client, which authenticates as its grant did (a
    key's assertion, or its secret); None for any other client (the SDK's handler)."""
    client_id = form.get("client_id")
    service_ids = {client.client_id for client in provider.modes.service_clients}
    if "client_assertion" not in form and client_id not in service_ids:
        return None
    audiences = [provider.issuer, f"{provider.issuer}/token", f"{provider.issuer}/revoke"]
    try:
        client = authenticate_client(
            provider.modes.service_clients,
            form,
            headers,
            audiences=audiences,
            ledger=provider.assertion_jtis,
            now=time.time() + provider.modes.clock_skew_s,
        )
    except ClientRefused as refused:
        return refused.response
    token = await provider.load_access_token(form.get("token", ""))
    if token is not None and token.client_id == client.client_id:
        await provider.revoke_token(token)
    return Response(status_code=200)  # §2.2: also for a token it does not know


def _redeemed_scopes(
    provider: FixtureProvider, client: ServiceClient, form: Mapping[str, str], now: float
) -> list[str]:
    """The scopes an ID-JAG grants this client, after every check of the module docstring
    (ClientRefused with invalid_grant otherwise)."""
    idp = provider.idp
    assertion = form.get("assertion")
    if idp is None or not assertion:
        raise ClientRefused(oauth_error("invalid_grant", "no identity provider is trusted here"))
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(
            assertion,
            idp.public_key_pem,
            algorithms=ALGORITHMS,
            audience=provider.issuer,
            issuer=idp.issuer,
            options={"verify_exp": False, "verify_iat": False, "require": ["sub", "jti"]},
        )
    except jwt.InvalidAudienceError:
        raise ClientRefused(
            oauth_error("invalid_grant", f"the ID-JAG's aud is not {provider.issuer}")
        ) from None
    except jwt.PyJWTError as exc:
        raise ClientRefused(
            oauth_error("invalid_grant", f"the ID-JAG is not valid: {exc}")
        ) from None
    if header.get("typ") != ID_JAG_TYP:
        raise ClientRefused(oauth_error("invalid_grant", f"the ID-JAG's typ is not {ID_JAG_TYP}"))
    if claims.get("resource") != provider.resource_url:
        raise ClientRefused(oauth_error("invalid_grant", "the ID-JAG is for another resource"))
    if claims.get("client_id") != client.client_id:
        raise ClientRefused(oauth_error("invalid_grant", "the ID-JAG was issued to another client"))
    expires = _checked_times(claims, now, "ID-JAG", "invalid_grant")
    if not provider.id_jag_jtis.spend(str(claims["jti"]), expires, now):
        raise ClientRefused(oauth_error("invalid_grant", "the ID-JAG was used before"))
    granted = str(claims.get("scope", BASE_SCOPE)).split()
    requested = form.get("scope")
    # The extension's §7.2.1: the intersection of what was asked and what the ID-JAG holds.
    return [s for s in requested.split() if s in granted] if requested else granted
