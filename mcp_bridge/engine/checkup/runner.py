"""`doctor`'s order of play: every step of findings.STEPS for one server, each run only when
the steps it needs passed, yielded in that order as it is decided.

The vault is read first (read-only), so that the transport step can send a stored access
token the way `run` would; everything else runs in the order shown. What the daemon says
is asked through a function the caller hands in: the daemon's socket belongs to the layers
above the engine.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mcp_bridge.auth.auth_records import StoredClient, read_stored_client
from mcp_bridge.auth.discovery import authorization_context
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.engine.checkup.client_steps import (
    pkce_finding,
    redirect_finding,
    registration_finding,
    reusable_client,
)
from mcp_bridge.engine.checkup.discovery_steps import (
    Discovered,
    auth_server_finding,
    challenge_finding,
    resource_metadata_finding,
)
from mcp_bridge.engine.checkup.findings import STEPS, Finding, Ledger, Outcome
from mcp_bridge.engine.checkup.local_steps import (
    StoredLogin,
    daemon_finding,
    host_keyring_finding,
    keyring_finding,
    login_finding,
    stored_login,
)
from mcp_bridge.engine.checkup.network import (
    Endpoint,
    Reach,
    connect_finding,
    dns_finding,
    presented_certificate,
    proxy_finding,
    reach,
    tls_finding,
)
from mcp_bridge.engine.checkup.transport import StoredTokenOnly, transport_finding
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.errors import BridgeError
from mcp_bridge.paths import BridgePaths
from mcp_bridge.store.inspection import VaultInspection, inspect_vault

if TYPE_CHECKING:
    import aiohttp

__all__ = ["CheckupTarget", "DaemonStatus", "run_checkup"]

# The daemon's `status` reply; None when no daemon runs; raises BridgeError when one may
# run but cannot be asked.
DaemonStatus = Callable[[], Mapping[str, object] | None]


@dataclass(frozen=True, slots=True)
class CheckupTarget:
    """The server to check: its profile, or why the flags or servers.toml gave none."""

    profile: ServerProfile | None
    profile_error: BridgeError | None = None
    server_name: str | None = None
    servers_file: Path | None = None


def profile_finding(target: CheckupTarget) -> Finding:
    """What `run` would use, from the name or URL and the flags (values of headers never)."""
    profile = target.profile
    if profile is None:
        assert target.profile_error is not None  # a target has one or the other
        return Finding.from_error("profile", target.profile_error)
    where = (
        f" (server {target.server_name!r} of {target.servers_file})"
        if target.server_name is not None
        else ""
    )
    headers = f"; headers {', '.join(profile.headers)}" if profile.headers else ""
    oauth = profile.oauth
    if oauth is None:
        sign_in = "no OAuth (an Authorization header is given)"
    elif oauth.client_id is not None:
        sign_in = f"OAuth as client {oauth.client_id}"
    elif oauth.client_metadata_url is not None:
        sign_in = f"OAuth, client id metadata document {oauth.client_metadata_url} if supported"
    else:
        sign_in = "OAuth, registering dynamically if needed"
    if oauth is not None and oauth.scopes:
        sign_in += f", scopes {' '.join(oauth.scopes)}"
    return Finding.passed(
        "profile",
        f"{profile.url}{where}; transport {profile.transport.value}{headers}; {sign_in}",
    )


class _Checkup:
    """One run of the steps; holds what earlier steps learned for the later ones."""

    def __init__(
        self,
        target: CheckupTarget,
        environ: Mapping[str, str],
        paths: BridgePaths,
        daemon_status: DaemonStatus,
        clock: Callable[[], float],
    ) -> None:
        self.target = target
        self.environ = environ
        self.paths = paths
        self.daemon_status = daemon_status
        self.clock = clock
        self.ledger = Ledger()
        self.endpoint: Endpoint | None = None
        self.answer = Reach()
        self.found = Discovered()
        self.inspection: VaultInspection | BridgeError | None = None
        self.login: StoredLogin | None = None

    async def findings(self) -> AsyncGenerator[Finding, None]:
        from mcp_bridge.http_client import client_session

        self.inspection = await self._inspect()
        async with client_session() as http:
            for step in STEPS:
                blocker = self.ledger.blocker(step)
                if blocker is not None:
                    yield self.ledger.skipped(step, blocker)
                    continue
                yield self.ledger.record(await self._run(step, http))

    async def _inspect(self) -> VaultInspection | BridgeError:
        try:
            inspection = await inspect_vault(dict(self.environ), paths=self.paths)
        except BridgeError as exc:
            return exc
        profile = self.target.profile
        if profile is not None and profile.oauth is not None:
            self.login = stored_login(inspection, profile)
        return inspection

    async def _run(self, step: str, http: aiohttp.ClientSession) -> Finding:
        if step == "profile":
            return profile_finding(self.target)
        if step == "keyring":
            assert self.inspection is not None  # read before the first step
            return keyring_finding(self.inspection)
        if step == "keyring-host-env":
            return await host_keyring_finding(self.environ)
        if step == "daemon":
            try:
                reply = self.daemon_status()
            except BridgeError as exc:
                return daemon_finding(exc, self.target.profile)
            return daemon_finding(reply, self.target.profile)
        profile = self.target.profile
        if profile is None:
            return Finding(step, Outcome.SKIP, "not checked: there is no server profile")
        if step in _NETWORK_STEPS:
            return await self._network(step, profile, http)
        return await self._oauth(step, profile, http)

    async def _network(
        self, step: str, profile: ServerProfile, http: aiohttp.ClientSession
    ) -> Finding:
        if step == "proxy":
            finding, self.endpoint = proxy_finding(profile.url, self.environ)
            return finding
        assert self.endpoint is not None  # the proxy step ran first
        if step == "dns":
            return await dns_finding(self.endpoint)
        if step == "connect":
            return await connect_finding(self.endpoint)
        if step == "tls":
            self.answer = await reach(profile.url, profile.headers, http)
            presented = None
            if not self.endpoint.via_proxy and profile.url.lower().startswith("https:"):
                presented = await presented_certificate(self.endpoint)
            return tls_finding(
                profile.url, self.answer, presented, via_proxy=self.endpoint.via_proxy
            )
        login = self.login if self.login and self.login.can_present(self.clock()) else None
        return await transport_finding(profile, http, StoredTokenOnly(login))

    async def _oauth(
        self, step: str, profile: ServerProfile, http: aiohttp.ClientSession
    ) -> Finding:
        settings = profile.oauth
        if settings is None:
            if step == "challenge":
                return self._static_header_challenge()
            return Finding.not_applicable(step, "OAuth is off: an Authorization header is given")
        if step == "challenge":
            return challenge_finding(self.answer, self.found)
        policy = UrlPolicy.for_server(profile.url, allow_http=settings.allow_http)
        if step == "resource-metadata":
            return await resource_metadata_finding(profile.url, self.found, policy, http)
        if step == "login":
            if not self.found.needs_sign_in and self.login is None and self._discovered():
                return Finding.not_applicable("login", "none stored, and none needed")
            return login_finding(self.login, profile, now=self.clock())
        if not self.found.needs_sign_in:
            return Finding.not_applicable(step, "the server needs no sign-in")
        if step == "auth-server-metadata":
            preferred = self.login.context.issuer if self.login is not None else None
            return await auth_server_finding(
                profile.url, self.found, policy, http, preferred_issuer=preferred
            )
        metadata = self.found.auth_server
        reusable = None
        if metadata is not None:
            context = authorization_context(
                profile.url, self.found.challenge, self.found.resource_metadata, metadata
            )
            reusable = reusable_client(settings, context, self._stored_client(metadata.issuer))
        if step == "redirect":
            return redirect_finding(settings, metadata, reusable)
        assert metadata is not None  # the ledger skips these when the metadata step failed
        if step == "pkce":
            return pkce_finding(metadata)
        return registration_finding(settings, metadata, reusable, now=self.clock())

    def _discovered(self) -> bool:
        """Whether the discovery steps ran (and so `needs_sign_in` means something)."""
        return "resource-metadata" not in self.ledger.blocked

    def _stored_client(self, issuer: str) -> StoredClient | None:
        if not isinstance(self.inspection, VaultInspection):
            return None
        return read_stored_client(self.inspection.view(), issuer)

    def _static_header_challenge(self) -> Finding:
        status = self.answer.status
        if status in (401, 403):
            return Finding.failed(
                "challenge",
                f"HTTP {status} with the configured Authorization header: the server refuses it",
                "Check the token given with --header (expired, mistyped, or for another server?)",
            )
        shown = f"HTTP {status}" if status is not None else f"no answer ({self.answer.error})"
        return Finding.passed(
            "challenge", f"{shown} with the configured Authorization header: OAuth is off"
        )


_NETWORK_STEPS = frozenset({"proxy", "dns", "connect", "tls", "transport"})


async def run_checkup(
    target: CheckupTarget,
    *,
    environ: Mapping[str, str],
    paths: BridgePaths,
    daemon_status: DaemonStatus,
    clock: Callable[[], float] = time.time,
) -> AsyncGenerator[Finding, None]:
    """Every step's finding, in the order of findings.STEPS, as each is decided. Changes
    nothing anywhere: no login, no registration, no vault write, no daemon started."""
    checkup = _Checkup(target, environ, paths, daemon_status, clock)
    async with aclosing(checkup.findings()) as findings:
        async for finding in findings:
            yield finding
