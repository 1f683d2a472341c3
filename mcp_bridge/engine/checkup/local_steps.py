"""`doctor`'s steps on this machine: the vault's key source here and in the thin environment
a desktop client starts mcp-bridge with, the stored login for the server, and the daemon.

Read-only throughout: the vault is read through store/inspection.py (no keyring probe item,
no new key, no prompt, a damaged file left in place), and the thin-environment check is that
same inspection run in a child process given only the variables such a client passes. No
token is ever shown: only who issued it, its scopes and when it expires.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping

from mcp_bridge import __version__
from mcp_bridge.auth.auth_records import (
    StoredTokens,
    read_client,
    read_context,
    read_dpop_key,
    read_tokens,
)
from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.discovery import AuthorizationContext
from mcp_bridge.auth.dpop_proofs import DpopNonces, DpopProofs
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.engine.checkup.findings import Finding
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.errors import BridgeError
from mcp_bridge.paths import HOME_ENV
from mcp_bridge.store.inspection import VaultInspection
from mcp_bridge.store.key_sources import PASSPHRASE_ENV
from mcp_bridge.store.selection import VAULT_ENV

__all__ = [
    "HOST_ENV_NAMES",
    "StoredLogin",
    "daemon_finding",
    "host_environment",
    "host_keyring_finding",
    "keyring_finding",
    "login_finding",
    "stored_login",
]

# What an MCP client built on the SDKs passes a stdio server on POSIX (its default
# environment): docs/desktop-hosts.md.
HOST_ENV_NAMES = ("HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER")
CHILD_TIMEOUT_S = 60.0  # Python's start, then a keyring that may take its 10 s deadline


def keyring_finding(inspection: VaultInspection | BridgeError) -> Finding:
    if isinstance(inspection, BridgeError):
        return Finding.from_error("keyring", inspection)
    return Finding.passed(
        "keyring", _vault_state(inspection.records is not None, inspection.description)
    )


def _vault_state(exists: bool, description: object) -> str:
    state = "the vault opens" if exists else "no vault yet (the first login makes it)"
    return f"{state}; {description}"


def host_environment(environ: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The environment a desktop client would start mcp-bridge with, and the names of the
    variables of ours carried over (which the client must be given as well).
    MCP_BRIDGE_HOME keeps the check on this vault; a key source other than the keyring is
    carried over, since it only works in a client configured with it."""
    thin = {name: environ[name] for name in HOST_ENV_NAMES if name in environ}
    carried = []
    if environ.get(HOME_ENV):
        carried.append(HOME_ENV)
        thin[HOME_ENV] = environ[HOME_ENV]
    kind = environ.get(VAULT_ENV, "").strip().lower()
    if kind and kind != "keyring":
        carried.append(VAULT_ENV)
        thin[VAULT_ENV] = environ[VAULT_ENV]
        if environ.get(PASSPHRASE_ENV):
            carried.append(PASSPHRASE_ENV)
            thin[PASSPHRASE_ENV] = environ[PASSPHRASE_ENV]
    return thin, carried


async def host_keyring_finding(environ: Mapping[str, str]) -> Finding:
    """The vault inspection in a child process with only the host's variables."""
    thin, carried = host_environment(environ)
    given = ", ".join([*HOST_ENV_NAMES, *carried])
    prefix = f"with only {given} set (as a desktop client starts mcp-bridge)"
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "mcp_bridge.store.inspection",
        env=thin,
        cwd="/",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CHILD_TIMEOUT_S):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        return Finding.failed(
            "keyring-host-env",
            f"{prefix}: the check did not finish within {CHILD_TIMEOUT_S:.0f} s",
            "The keyring may be waiting for an unlock prompt: unlock it and retry",
        )
    try:
        report = json.loads(out)
        assert isinstance(report, dict)
    except (ValueError, AssertionError):
        last = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        return Finding.failed(
            "keyring-host-env",
            f"{prefix}: the check failed (exit code {process.returncode}: {last[0][:200]})",
            f"Run `env -i HOME=$HOME PATH=$PATH {sys.executable} -m mcp_bridge.store."
            "inspection` to see why",
        )
    if report.get("ok") is not True:
        return Finding.failed(
            "keyring-host-env",
            f"{prefix}: {report.get('what')}",
            f"{report.get('next_step') or 'See the message'}; or set what it needs in the "
            "\"env\" of the server's entry in the client's config",
        )
    detail = f"{prefix}: {_vault_state(report.get('exists') is True, report.get('vault'))}"
    if carried:
        detail += (
            f'; {" and ".join(carried)} must be in the "env" of the server\'s entry in each '
            "client's config as well"
        )
    return Finding.passed("keyring-host-env", detail)


class StoredLogin:
    """What the vault keeps for one server: where it signed in, with which client, and its
    tokens (which never leave this object but as the headers for the server they were
    issued for), with the DPoP key they may be bound to."""

    def __init__(
        self,
        context: AuthorizationContext,
        client: ClientRegistration | None,
        stored: StoredTokens | None,
        dpop: DpopProofs | None = None,
    ) -> None:
        self.context = context
        self.client = client
        self._stored = stored
        self.dpop = dpop

    @property
    def tokens(self) -> StoredTokens | None:
        return self._stored

    def can_present(self, now: float) -> bool:
        """Whether the access token has not expired, and a bound one has its key."""
        if self._stored is None or self._stored.tokens.is_expired(now):
            return False
        return not self._stored.tokens.is_dpop or self.dpop is not None

    def headers(self, method: str, url: str) -> dict[str, str]:
        """The headers that present the token to a `method` request to `url`: Bearer, or
        the DPoP scheme with a proof made for that request (RFC 9449 §7.1)."""
        if self._stored is None:
            return {}
        tokens = self._stored.tokens
        presented = {"Authorization": tokens.authorization_header()}
        if tokens.is_dpop and self.dpop is not None:
            presented["DPoP"] = self.dpop.proof(method, url, tokens.access_token)
        return presented


def stored_login(inspection: VaultInspection, profile: ServerProfile) -> StoredLogin | None:
    """The server's records in the vault, read as the token manager reads them."""
    assert profile.oauth is not None  # only asked for a server that signs in with OAuth
    policy = UrlPolicy.for_server(profile.url, allow_http=profile.oauth.allow_http)
    view = inspection.view()
    context = read_context(view, profile.resource, mcp_url=profile.url, policy=policy)
    if context is None:
        return None
    key = read_dpop_key(view, profile.resource)
    dpop = DpopProofs(key, DpopNonces()) if key is not None else None
    client = read_client(view, context.issuer)
    return StoredLogin(context, client, read_tokens(view, context), dpop)


def _duration(seconds: float) -> str:
    seconds = abs(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def login_finding(login: StoredLogin | None, profile: ServerProfile, *, now: float) -> Finding:
    """Whether a login is stored, and how long its access token lasts."""
    if login is None:
        return Finding.passed(
            "login",
            "none stored yet: `run` signs in at the first request that needs it, or "
            f"`mcp-bridge login {profile.url}` does it now",
        )
    client = (
        f" as client {login.client.client_id} ({login.client.method.value})"
        if login.client is not None
        else ""
    )
    where = f"signed in at {login.context.issuer}{client}"
    if login.tokens is None:
        return Finding.passed(
            "login", f"{where}, but no tokens are kept: the next request signs in again"
        )
    tokens = login.tokens.tokens
    scopes = " ".join(tokens.scopes) or "(none named)"
    if tokens.expires_at is None:
        expiry = "no expiry given"
    elif tokens.expires_at > now:
        expiry = f"expires in {_duration(tokens.expires_at - now)}"
    else:
        expiry = f"expired {_duration(now - tokens.expires_at)} ago"
    grant = profile.oauth.grant if profile.oauth is not None else None
    if grant is not None and grant.is_machine:
        renewal = f"renewed by repeating the {grant.value} grant ahead of expiry"
    elif tokens.refresh_token:
        renewal = "refreshable (the daemon refreshes it ahead of expiry)"
    else:
        renewal = "no refresh token: when it expires, the next request signs in again"
    return Finding.passed("login", f"{where}; scopes {scopes}; access token {expiry}, {renewal}")


def daemon_finding(
    reply: Mapping[str, object] | BridgeError | None, profile: ServerProfile | None
) -> Finding:
    """The daemon's status reply (None: none runs), and what it knows of this server."""
    if reply is None:
        return Finding.passed(
            "daemon", "not running: `mcp-bridge run` starts it when a client needs it"
        )
    if isinstance(reply, BridgeError):
        return Finding.from_error("daemon", reply)
    detail = (
        f"running: pid {reply.get('pid')}, up {reply.get('uptime_s')} s, "
        f"{reply.get('connections')} client(s) connected"
    )
    if reply.get("version") != __version__:
        detail += (
            f"; it is version {reply.get('version')}, this is {__version__}: the next `run` "
            "restarts it"
        )
    servers = reply.get("servers")
    known = [
        server
        for server in (servers if isinstance(servers, list) else [])
        if isinstance(server, dict)
        and profile is not None
        and server.get("resource") == profile.resource
    ]
    if not known:
        return Finding.passed("daemon", f"{detail}; it has not served this server since it started")
    server = known[0]
    failure = server.get("last_failure")
    if failure:
        url = profile.url if profile is not None else "URL"
        return Finding.failed(
            "daemon",
            f"{detail}; its last refresh of this server's token failed: {failure}",
            f"Sign in again if it persists: `mcp-bridge login {url}`",
        )
    return Finding.passed(
        "daemon", f"{detail}; it serves this server ({server.get('refreshes')} refresh(es) so far)"
    )
