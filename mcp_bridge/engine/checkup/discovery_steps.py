"""`doctor`'s discovery steps: the 401 challenge, protected-resource metadata and
authorization-server metadata, each decided by the auth layer's own steps (challenge.py,
discovery.py, metadata.py) and run by its one driver, so `doctor` judges every document as a
login would. Only GETs of metadata are sent.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import urlsplit

from mcp_bridge.auth.challenge import BearerChallenge, parse_www_authenticate
from mcp_bridge.auth.discovery import (
    choose_issuer,
    find_auth_server_metadata,
    find_legacy_auth_server,
    find_resource_metadata,
)
from mcp_bridge.auth.errors import AuthError, AuthResponseInvalid, sanitize_remote_text
from mcp_bridge.auth.http_step import HttpRequest, HttpResponse, Step, run_step
from mcp_bridge.auth.metadata import AuthServerMetadata, ProtectedResourceMetadata
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.engine.checkup.findings import Finding
from mcp_bridge.engine.checkup.network import Reach

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "Trail",
    "auth_server_finding",
    "challenge_finding",
    "resource_metadata_finding",
    "traced",
]

T = TypeVar("T")

Trail = list[tuple[str, int]]  # (URL, HTTP status) of each request a step made


def traced(step: Step[T], trail: Trail) -> Step[T]:
    """`step` as it is, each request's URL and answer status noted in `trail` (so a
    finding can say where a document was found and what was tried before)."""
    try:
        request: HttpRequest = next(step)
        while True:
            response: HttpResponse = yield request
            trail.append((response.url or request.url, response.status))
            request = step.send(response)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        step.close()


def _tried(trail: Trail) -> str:
    return ", ".join(f"{url} ({status})" for url, status in trail) or "nothing"


@dataclass
class Discovered:
    """What the discovery steps learned, for the steps after them."""

    challenge: BearerChallenge | None = None
    unauthorized: bool = False  # the request without a token got 401 or 403
    resource_metadata: ProtectedResourceMetadata | None = None
    auth_server: AuthServerMetadata | None = None

    @property
    def needs_sign_in(self) -> bool:
        """A 401, or metadata naming an authorization server (servers whose authorization is
        optional publish it and never answer 401): a login is what `run` would do."""
        return self.unauthorized or self.resource_metadata is not None


def challenge_finding(answer: Reach, found: Discovered) -> Finding:
    """The answer to the request without a token, and its `WWW-Authenticate` (RFC 9110
    §11.6.1, RFC 6750 §3, RFC 9728 §5.1)."""
    if answer.status is None:
        return Finding.failed(
            "challenge",
            f"no HTTP answer: {answer.error}",
            "Check that the server is running and the URL is right, then retry",
        )
    if answer.status not in (401, 403):
        return Finding.passed(
            "challenge",
            f"HTTP {answer.status} without a token: no sign-in is demanded for this request",
        )
    found.unauthorized = True
    header = answer.www_authenticate
    if not header:
        return Finding.passed(
            "challenge",
            f"HTTP {answer.status} without WWW-Authenticate: discovery tries the well-known "
            "metadata URLs (RFC 9728 §5.1 asks servers to name theirs in the header)",
        )
    found.challenge = BearerChallenge.from_header(header)
    if found.challenge is None:
        schemes = sorted({c.scheme for c in parse_www_authenticate(header)}) or ["no readable"]
        return Finding.failed(
            "challenge",
            f"HTTP {answer.status} asks for {', '.join(schemes)} authentication, not an OAuth "
            "bearer token",
            "Pass the credential the server wants with --header 'Authorization: <scheme> ...'",
        )
    said = [
        f"{name}={sanitize_remote_text(value, max_chars=120)}"
        for name, value in (
            ("resource_metadata", found.challenge.resource_metadata),
            ("scope", " ".join(found.challenge.scope)),
            ("error", found.challenge.error),
        )
        if value
    ]
    return Finding.passed(
        "challenge",
        f"HTTP {answer.status} with a Bearer challenge"
        + (f": {', '.join(said)}" if said else " naming nothing more"),
    )


async def resource_metadata_finding(
    url: str, found: Discovered, policy: UrlPolicy, http: aiohttp.ClientSession
) -> Finding:
    """RFC 9728 metadata, looked for where a login looks (the challenge's URL first)."""
    trail: Trail = []
    step = find_resource_metadata(url, found.challenge, policy)
    try:
        prm = await run_step(traced(step, trail), http, policy=policy)
    except AuthResponseInvalid as exc:
        return Finding.from_error(
            "resource-metadata",
            exc,
            "Check that the URL is the server's MCP endpoint exactly as its documentation "
            "gives it; if it is, tell the server's owner",
        )
    except AuthError as exc:
        return Finding.from_error("resource-metadata", exc)
    if prm is None:
        if found.unauthorized:
            return Finding.passed(
                "resource-metadata",
                f"none (tried {_tried(trail)}): a server of the 2025-03-26 revision, whose "
                "authorization server is its own origin",
            )
        return Finding.not_applicable(
            "resource-metadata",
            f"none (tried {_tried(trail)}) and no 401: the server needs no sign-in",
        )
    found.resource_metadata = prm
    source = trail[-1][0] if trail else url
    scopes = f", scopes {' '.join(prm.scopes_supported)}" if prm.scopes_supported else ""
    return Finding.passed(
        "resource-metadata",
        f"{source}: resource {prm.resource}, authorization server(s) "
        f"{', '.join(prm.authorization_servers)}{scopes}",
    )


async def auth_server_finding(
    url: str,
    found: Discovered,
    policy: UrlPolicy,
    http: aiohttp.ClientSession,
    *,
    preferred_issuer: str | None,
) -> Finding:
    """RFC 8414 / OIDC metadata of the authorization server a login would use."""
    trail: Trail = []
    prm = found.resource_metadata
    step: Generator[HttpRequest, HttpResponse, AuthServerMetadata] = (
        find_legacy_auth_server(url, policy)
        if prm is None
        else find_auth_server_metadata(choose_issuer(prm, preferred_issuer), policy)
    )
    try:
        metadata = await run_step(traced(step, trail), http, policy=policy)
    except AuthError as exc:
        return Finding.from_error("auth-server-metadata", exc)
    found.auth_server = metadata
    if metadata.is_guessed:
        origin = f"{urlsplit(url).scheme}://{urlsplit(url).netloc}"
        return Finding.passed(
            "auth-server-metadata",
            f"none at {_tried(trail)}: the 2025-03-26 default endpoints /authorize, /token "
            f"and /register at {origin}",
        )
    endpoints = ["authorization", "token"]
    endpoints += ["registration"] * (metadata.registration_endpoint is not None)
    endpoints += ["device"] * (metadata.device_authorization_endpoint is not None)
    endpoints += ["revocation"] * (metadata.revocation_endpoint is not None)
    return Finding.passed(
        "auth-server-metadata",
        f"issuer {metadata.issuer} ({trail[-1][0] if trail else 'its metadata'}): "
        f"{', '.join(endpoints)} endpoints",
    )
