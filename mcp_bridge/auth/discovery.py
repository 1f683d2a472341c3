"""Discovery: from an MCP server URL (and its 401 challenge) to the authorization server
that protects it, as steps (see http_step.py). MCP 2026-07-28,
"Authorization Server Discovery" page (protected resource metadata, then authorization
server metadata), and the 2025-03-26 "Authorization" page for servers of that revision.

Pure: the steps yield GETs and decide on the answers; `run_step` does the I/O.

Order of play (`discover`):
1. Protected-resource metadata (RFC 9728): the challenge's `resource_metadata` URL, then
   the path-inserted well-known URL, then the root one. A 404 moves on; a document that is
   present but wrong (another resource, bad types) stops discovery.
2. With PRM: the authorization server it names (the caller's preferred one if listed,
   else the first), its metadata probed in the spec's RFC 8414 / OIDC order; the document
   must name exactly the issuer it was fetched for.
3. Without PRM (every candidate 404): the 2025-03-26 rules, metadata at the MCP server's
   origin, else the default /authorize, /token and /register there.
Server errors (5xx, 429) never fall through to the legacy path: a transient failure must
not pick a different authorization server. They raise AuthServerUnavailable instead.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from mcp_bridge.auth.challenge import BearerChallenge
from mcp_bridge.auth.errors import (
    STATIC_TOKEN_STEP,
    AuthError,
    AuthResponseInvalid,
    AuthServerUnavailable,
    DiscoveryFailed,
    NoAuthorizationServer,
)
from mcp_bridge.auth.http_step import HttpRequest, HttpResponse, Step, run_step
from mcp_bridge.auth.metadata import AuthServerMetadata, ProtectedResourceMetadata
from mcp_bridge.auth.urlpolicy import UrlPolicy, canonical_resource
from mcp_bridge.errors import BridgeError

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "AuthServerQuirks",
    "AuthorizationContext",
    "auth_server_metadata_urls",
    "authorization_context",
    "choose_issuer",
    "discover",
    "find_auth_server_metadata",
    "find_legacy_auth_server",
    "find_resource_metadata",
    "resource_metadata_urls",
]

log = logging.getLogger(__name__)

PRM_WELL_KNOWN = "/.well-known/oauth-protected-resource"
OAUTH_WELL_KNOWN = "/.well-known/oauth-authorization-server"
OIDC_WELL_KNOWN = "/.well-known/openid-configuration"
# Sent on the 2025-03-26 metadata request, as that revision asks (SHOULD).
LEGACY_PROTOCOL_VERSION = "2025-03-26"


@dataclass(frozen=True, slots=True)
class AuthorizationContext:
    """Everything login and refresh need to know about where to authorize."""

    resource: str  # canonical RFC 8707 resource: send it on every authorize/token request
    issuer: str  # the validated issuer: key for registrations and tokens, RFC 9207 `iss`
    auth_server: AuthServerMetadata
    resource_metadata: ProtectedResourceMetadata | None  # None on the 2025-03-26 path
    challenged_scopes: tuple[str, ...] = ()  # from the 401/403 that started this

    @property
    def is_legacy(self) -> bool:
        return self.resource_metadata is None

    def to_json(self) -> dict[str, object]:
        """For the vault: after a restart, refresh must reach the same token endpoint
        without discovering again (the SDK forgets it, docs/sdk-gaps.md #2)."""
        doc: dict[str, object] = {
            "resource": self.resource,
            "issuer": self.issuer,
            "auth_server": self.auth_server.to_json(),
            "challenged_scopes": list(self.challenged_scopes),
        }
        if self.resource_metadata is not None:
            doc["resource_metadata"] = self.resource_metadata.to_json()
        return doc

    @classmethod
    def from_vault(cls, doc: object, *, mcp_url: str, policy: UrlPolicy) -> AuthorizationContext:
        """Read back `to_json` output for the server at `mcp_url`, every part re-checked;
        AuthResponseInvalid when it is damaged or belongs to another server."""
        if not isinstance(doc, dict) or not isinstance(doc.get("resource"), str):
            raise AuthResponseInvalid(
                "The stored authorization context is damaged", next_step="Log in again"
            )
        server_resource = canonical_resource(mcp_url)
        prm_doc = doc.get("resource_metadata")
        prm = (
            None
            if prm_doc is None
            else ProtectedResourceMetadata.from_vault(
                prm_doc, server_resource=server_resource, policy=policy
            )
        )
        metadata = AuthServerMetadata.from_vault(doc.get("auth_server"), policy=policy)
        resource = prm.resource if prm is not None else server_resource
        scopes = doc.get("challenged_scopes", [])
        if (
            doc["resource"] != resource
            or doc.get("issuer") != metadata.issuer
            or not isinstance(scopes, list)
            or not all(isinstance(scope, str) for scope in scopes)
        ):
            raise AuthResponseInvalid(
                f"The stored authorization context does not belong to {mcp_url}",
                next_step="Log in again",
            )
        return cls(resource, metadata.issuer, metadata, prm, tuple(scopes))


TokenBody = Literal["form", "json"]


@dataclass(frozen=True, slots=True)
class AuthServerQuirks:
    """How one authorization server wants its requests where it departs from the RFCs,
    learned by one retry and kept per issuer next to the client registration
    (auth_records.py), so later grants and later processes start the way that worked
    (docs/oauth-in-the-wild.md §6). The defaults are the RFCs' own."""

    # RFC 6749 §4.1.3 / §6 and RFC 7009 §2.1 send form bodies; some token endpoints parse
    # JSON only and answer a form with a 500 or a 400 about the body (token_endpoint.py).
    token_body: TokenBody = "form"
    # RFC 8707 `resource` on the authorization and token requests (MCP MUST). False: the AS
    # answered it with `invalid_target`, as Microsoft Entra ID does to any resource that is
    # not its app's ID URI (AADSTS9010010); the token is still only sent to our resource.
    send_resource: bool = True

    def to_json(self) -> dict[str, object]:
        return {"token_body": self.token_body, "send_resource": self.send_resource}

    @classmethod
    def from_json(cls, doc: object) -> AuthServerQuirks:
        """Read back `to_json` output. Anything unreadable is the RFC default: a wrong
        guess costs one retry, which learns the quirk again."""
        fields = doc if isinstance(doc, dict) else {}
        body = fields.get("token_body")
        return cls(
            token_body="json" if body == "json" else "form",
            send_resource=fields.get("send_resource") is not False,
        )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def resource_metadata_urls(mcp_url: str) -> list[str]:
    """The well-known PRM URLs for `mcp_url`, in the order MCP's "Authorization Server
    Discovery" page requires: path-inserted first, then the root."""
    root = _origin(mcp_url) + PRM_WELL_KNOWN
    path = urlsplit(mcp_url).path.rstrip("/")
    # RFC 9728 §3.1 inserts the well-known segment before the path; at the root the
    # path form equals the root form, so it is skipped rather than asked twice.
    return [root + path, root] if path else [root]


def auth_server_metadata_urls(issuer: str) -> list[str]:
    """Where to look for an issuer's metadata, in the order of MCP's "Authorization Server
    Discovery" page: RFC 8414, then OIDC path-inserted, then OIDC path-appended."""
    origin = _origin(issuer)
    path = urlsplit(issuer).path.rstrip("/")
    if not path:
        return [origin + OAUTH_WELL_KNOWN, origin + OIDC_WELL_KNOWN]
    return [
        origin + OAUTH_WELL_KNOWN + path,  # RFC 8414 §3.1: inserted before the path
        origin + OIDC_WELL_KNOWN + path,  # the same insertion, OIDC's suffix
        origin + path + OIDC_WELL_KNOWN,  # OIDC Discovery §4: appended to the issuer
    ]


def _is_server_error(response: HttpResponse) -> bool:
    return response.status >= 500 or response.status == 429


def _unavailable(what: str, tried: list[str]) -> AuthServerUnavailable:
    return AuthServerUnavailable(
        f"The {what} could not be fetched: the server answered with errors at {', '.join(tried)}",
        next_step="Try again later",
    )


def find_resource_metadata(
    mcp_url: str, challenge: BearerChallenge | None, policy: UrlPolicy
) -> Step[ProtectedResourceMetadata | None]:
    """Fetch the RFC 9728 document for `mcp_url`; None when no candidate has one (the
    server predates PRM). Raises AuthResponseInvalid for a present but unusable document,
    UrlRefused for a hostile `resource_metadata` URL, AuthServerUnavailable on 5xx."""
    server_resource = canonical_resource(mcp_url)
    candidates = resource_metadata_urls(mcp_url)
    if challenge is not None and challenge.resource_metadata:
        # RFC 9728 §5.1 / MCP Authorization Server Discovery: the 401 named it, so it comes
        # first (MUST).
        url = policy.check_fetch(challenge.resource_metadata, role="resource_metadata")
        candidates = [url, *(c for c in candidates if c != url)]
    server_errors: list[str] = []
    for url in candidates:
        response = yield HttpRequest.get(url)
        if _is_server_error(response):
            server_errors.append(f"{url} ({response.status})")
            continue
        if not response.is_success:
            log.debug("no resource metadata at %s (%d)", url, response.status)
            continue
        doc = response.json(what="protected resource metadata")
        _require_authorization_servers(doc, mcp_url, url)
        return ProtectedResourceMetadata.from_json(
            doc, server_resource=server_resource, policy=policy, source=url
        )
    if server_errors:
        raise _unavailable("protected resource metadata", server_errors)
    return None


def _require_authorization_servers(doc: object, mcp_url: str, source: str) -> None:
    """NoAuthorizationServer when a PRM document names no authorization server. RFC 9728
    §2 makes `authorization_servers` OPTIONAL: a resource may take tokens issued out of
    band, such as the static bearer tokens of servers without OAuth (which also answer 401
    without WWW-Authenticate and register no clients). There is then no sign-in to run, and
    saying so comes before judging the document's other fields: a complaint about its
    `resource` (some such servers write one that is no URL) would send the user to the
    server's owner for nothing."""
    servers = doc.get("authorization_servers") if isinstance(doc, dict) else ()
    if servers is None or servers == []:
        raise NoAuthorizationServer(
            f"{mcp_url} does not sign in with OAuth: its protected-resource metadata "
            f"({source}) names no authorization server, so it takes a static token",
            next_step=STATIC_TOKEN_STEP,
        )


def find_auth_server_metadata(issuer: str, policy: UrlPolicy) -> Step[AuthServerMetadata]:
    """Fetch and validate the metadata of `issuer` (RFC 8414 and OIDC, in
    the order of MCP's "Authorization Server Discovery" page).
    A document naming another issuer is discarded (spec MUST) and the next URL is tried;
    raises the first such error if nothing usable is found, DiscoveryFailed if nothing
    was there at all, AuthServerUnavailable if the server only answered with errors."""
    policy.check_fetch(issuer, role="authorization server")
    tried: list[str] = []
    server_errors: list[str] = []
    refused: AuthError | None = None
    for url in auth_server_metadata_urls(issuer):
        tried.append(url)
        response = yield HttpRequest.get(url)
        if _is_server_error(response):
            server_errors.append(f"{url} ({response.status})")
            continue
        if not response.is_success:
            continue
        try:
            return AuthServerMetadata.from_json(
                response.json(what="authorization server metadata"),
                issuer=issuer,
                policy=policy,
                source=url,
            )
        except AuthResponseInvalid as exc:
            log.debug("discarding authorization server metadata from %s: %s", url, exc.what)
            refused = refused or exc
    if refused is not None:
        raise refused
    if server_errors:
        raise _unavailable("authorization server metadata", server_errors)
    raise DiscoveryFailed(
        f"No authorization server metadata for {issuer} at {', '.join(tried)}",
        next_step="Check the server URL, or tell the server's owner",
    )


def find_legacy_auth_server(mcp_url: str, policy: UrlPolicy) -> Step[AuthServerMetadata]:
    """The 2025-03-26 rules (MCP 2025-03-26, Authorization): the authorization base is the
    MCP server's origin; its RFC 8414 document if there is one, else the default endpoints."""
    base = _origin(mcp_url)
    url = base + OAUTH_WELL_KNOWN
    response = yield HttpRequest.get(url, {"MCP-Protocol-Version": LEGACY_PROTOCOL_VERSION})
    if _is_server_error(response):
        raise _unavailable("authorization server metadata", [f"{url} ({response.status})"])
    if not response.is_success:
        log.debug(
            "no metadata at %s (%d): using the 2025-03-26 default endpoints", url, response.status
        )
        return AuthServerMetadata.guessed_for(base)
    doc = response.json(what="authorization server metadata")
    # These servers often write the origin with a trailing slash; the issuer is still
    # recorded exactly as the document spells it, since RFC 9207 `iss` must match that.
    named = doc.get("issuer") if isinstance(doc, dict) else None
    issuer = named if isinstance(named, str) and named in (base, base + "/") else base
    return AuthServerMetadata.from_json(doc, issuer=issuer, policy=policy, source=url)


def choose_issuer(prm: ProtectedResourceMetadata, preferred_issuer: str | None = None) -> str:
    """The authorization server to use among the PRM's `authorization_servers`: the
    preferred one when listed (RFC 9728 §7.6 leaves the choice to the client), else the
    first."""
    if preferred_issuer is not None and preferred_issuer in prm.authorization_servers:
        return preferred_issuer
    return prm.authorization_servers[0]


def authorization_context(
    mcp_url: str,
    challenge: BearerChallenge | None,
    prm: ProtectedResourceMetadata | None,
    metadata: AuthServerMetadata,
) -> AuthorizationContext:
    """What discovery concludes from its two documents (`prm` None: the 2025-03-26 path,
    whose resource is the MCP server's own canonical URL)."""
    return AuthorizationContext(
        resource=canonical_resource(mcp_url) if prm is None else prm.resource,
        issuer=metadata.issuer,
        auth_server=metadata,
        resource_metadata=prm,
        challenged_scopes=challenge.scope if challenge is not None else (),
    )


def discover(
    mcp_url: str,
    challenge: BearerChallenge | None,
    policy: UrlPolicy,
    *,
    preferred_issuer: str | None = None,
) -> Step[AuthorizationContext]:
    """The whole of discovery for one MCP server; see the module docstring for the order.
    `preferred_issuer` picks among several `authorization_servers` (`choose_issuer`)."""
    prm = yield from find_resource_metadata(mcp_url, challenge, policy)
    if prm is None:
        metadata = yield from find_legacy_auth_server(mcp_url, policy)
    else:
        metadata = yield from find_auth_server_metadata(
            choose_issuer(prm, preferred_issuer), policy
        )
    return authorization_context(mcp_url, challenge, prm, metadata)


async def names_an_auth_server(
    mcp_url: str, http: aiohttp.ClientSession, policy: UrlPolicy
) -> bool:
    """True when the server's protected-resource metadata (RFC 9728) names an
    authorization server: it wants OAuth even if it never answers 401. False on any
    failure: a missing or broken document is no reason to sign in. Nobody asked for this
    fetch, so it follows no redirect (a server may send every path elsewhere)."""
    try:
        step = find_resource_metadata(mcp_url, None, policy)
        metadata = await run_step(step, http, policy=policy, follow_redirects=False)
    except BridgeError as exc:
        log.debug("no usable resource metadata for %s: %s", mcp_url, exc)
        return False
    return metadata is not None and bool(metadata.authorization_servers)
