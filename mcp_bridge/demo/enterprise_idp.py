"""A demo enterprise identity provider (IdP) for enterprise-managed authorization (the MCP
extension; the Identity Assertion JWT Authorization Grant draft): the party that signs the
user in (here: `/id-token`, which stands in for the single sign-on) and later exchanges that
ID token for an ID-JAG naming the MCP server's authorization server (RFC 8693 token
exchange), which the demo AS trusts (machine_grants.py).

The exchange is held to the rules that protect it: the client must authenticate (a secret
or a key, the extension's MUST), the ID token must be this IdP's, unexpired and issued to
that client, the requested type the ID-JAG, and `audience` and `resource` the one pair this
IdP maps (its §7.6.1). `idp_policy` makes it refuse every exchange ("deny") or issue ID-JAGs
for another audience ("wrong_audience").
"""

from __future__ import annotations

import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mcp_bridge.demo.auth_modes import AuthServerModes
from mcp_bridge.demo.machine_grants import (
    ALGORITHMS,
    ID_JAG_TYP,
    ClientRefused,
    JtiLedger,
    authenticate_client,
    oauth_error,
)

__all__ = ["OTHER_AUDIENCE", "EnterpriseIdp", "build_idp_app"]

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ID_JAG_TYPE = "urn:ietf:params:oauth:token-type:id-jag"
ID_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:id_token"
OTHER_AUDIENCE = "https://another-as.example"  # `wrong_audience`: the ID-JAG names this
ID_TOKEN_TTL_S = 3600
METADATA_PATHS = ("/.well-known/oauth-authorization-server", "/.well-known/openid-configuration")


@dataclass
class EnterpriseIdp:
    """The IdP's state: its signing key, the AS and MCP server it maps, its counters."""

    issuer: str
    as_issuer: str
    mcp_url: str
    modes: AuthServerModes
    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1()), repr=False
    )
    stats: Counter[str] = field(default_factory=Counter)
    client_jtis: JtiLedger = field(default_factory=JtiLedger)

    @property
    def public_key_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def _sign(self, claims: dict[str, object], typ: str) -> str:
        return jwt.encode(claims, self.key, algorithm="ES256", headers={"typ": typ})

    def id_token(self, subject: str, client_id: str, ttl_s: float) -> str:
        """An OIDC ID token for `subject`, issued to `client_id`: what the single sign-on
        would have given the client (OIDC Core §2)."""
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": subject, "aud": client_id, "iat": now}
        return self._sign({**claims, "exp": now + int(ttl_s)}, "JWT")

    def metadata(self) -> dict[str, object]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/authorize",  # not served: SSO is faked
            "token_endpoint": f"{self.issuer}/token",
            "response_types_supported": ["code"],
            "grant_types_supported": [TOKEN_EXCHANGE],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "private_key_jwt",
            ],
            "token_endpoint_auth_signing_alg_values_supported": ALGORITHMS,
        }

    def exchange(self, form: dict[str, str], headers: dict[bytes, bytes]) -> Response:
        """The token exchange (RFC 8693 §2) for an ID-JAG; an RFC 6749 §5.2 error otherwise."""
        self.stats["exchange_requests"] += 1
        try:
            client = authenticate_client(
                self.modes.idp_clients,
                form,
                headers,
                audiences=[self.issuer],
                ledger=self.client_jtis,
                now=time.time(),
            )
            subject = self._checked_request(form, client.client_id)
        except ClientRefused as refused:
            self.stats["exchange_refusals"] += 1
            return refused.response
        now = int(time.time())
        audience = OTHER_AUDIENCE if self.modes.idp_policy == "wrong_audience" else self.as_issuer
        scope = form.get("scope") or "mcp"
        claims = {
            "jti": secrets.token_urlsafe(16),
            "iss": self.issuer,
            "sub": subject,
            "aud": audience,
            "resource": self.mcp_url,
            "client_id": client.client_id,  # the same id at the IdP and the AS, here
            "scope": scope,
            "iat": now,
            "exp": now + int(self.modes.id_jag_ttl_s),
        }
        self.stats["id_jags_issued"] += 1
        body = {
            "issued_token_type": ID_JAG_TYPE,
            "access_token": self._sign(claims, ID_JAG_TYP),
            "token_type": "N_A",
            "scope": scope,
            "expires_in": int(self.modes.id_jag_ttl_s),
        }
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    def _checked_request(self, form: dict[str, str], client_id: str) -> str:
        """The subject of a valid exchange request's ID token; ClientRefused otherwise."""
        if form.get("grant_type") != TOKEN_EXCHANGE:
            raise ClientRefused(oauth_error("unsupported_grant_type", "token exchange only"))
        if form.get("requested_token_type") != ID_JAG_TYPE:
            raise ClientRefused(oauth_error("invalid_request", "only ID-JAGs are issued here"))
        if form.get("subject_token_type") != ID_TOKEN_TYPE:
            raise ClientRefused(oauth_error("invalid_request", "the subject must be an ID token"))
        try:
            claims = jwt.decode(
                form.get("subject_token", ""),
                self.public_key_pem,
                algorithms=["ES256"],
                audience=client_id,
                issuer=self.issuer,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise ClientRefused(oauth_error("invalid_grant", "the ID token expired")) from None
        except jwt.PyJWTError as exc:
            raise ClientRefused(
                oauth_error("invalid_grant", f"the ID token is not valid here: {exc}")
            ) from None
        if form.get("audience") != self.as_issuer or form.get("resource") not in (
            None,
            self.mcp_url,
        ):
            raise ClientRefused(
                oauth_error("invalid_target", "no such authorization server and resource here")
            )
        if self.modes.idp_policy == "deny":
            raise ClientRefused(
                oauth_error("access_denied", "policy: this user may not use that MCP server")
            )
        return str(claims["sub"])


def build_idp_app(idp: EnterpriseIdp) -> Starlette:
    async def metadata(request: Request) -> Response:
        return JSONResponse(idp.metadata())

    async def token(request: Request) -> Response:
        body = (await request.body()).decode("latin-1")
        form = dict(parse_qsl(body, keep_blank_values=True))
        headers = {k.lower(): v for k, v in request.headers.raw}
        return idp.exchange(form, headers)

    async def id_token(request: Request) -> Response:
        # Fixture only: stands in for the user's single sign-on at the IdP.
        doc = await request.json()
        ttl_s = float(doc.get("ttl_s", ID_TOKEN_TTL_S))
        issued = idp.id_token(str(doc["sub"]), str(doc["client_id"]), ttl_s)
        return JSONResponse({"id_token": issued})

    async def stats(request: Request) -> Response:
        return JSONResponse(dict(idp.stats))

    routes = [Route(path, metadata, methods=["GET"]) for path in METADATA_PATHS]
    routes += [
        Route("/token", token, methods=["POST"]),
        Route("/id-token", id_token, methods=["POST"]),
        Route("/stats", stats, methods=["GET"]),
    ]
    return Starlette(routes=routes)
