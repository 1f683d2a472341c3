"""TokenManager: the tokens of one MCP server, kept fresh. Knows the vault records, the
refresh step and time; not browsers or logins (login.py), nor HTTP headers (provider.py).

Theory of operation

    manager = TokenManager(mcp_url, vault, policy=policy, http=provider_session)
    tokens = manager.usable_tokens()          # per request: no lock, no I/O, no await
    tokens = await manager.fresh_tokens()     # when that was None: load, refresh if needed
    await manager.save_login(login)           # after a browser login
    manager.start_background()                # refresh ahead of expiry while idle
    await manager.aclose()                    # cancels the timer and any refresh

Its vault records (servers, clients, tokens) are laid out in auth_records.py. Its HTTP
session belongs to its owner (the provider), which makes it on first use and closes it.
The background refresh is refresh_ahead.py's loop, on the due time this class computes.

Refresh rules (why: docs/oauth-in-the-wild.md §5 and docs/keyrings.md §4; when to refresh
and how long to back off: refresh_timing.py):
- single-flight in-process: one task refreshes, every caller awaits that task (shielded, so a
  cancelled caller cannot cancel it for the others); nothing else ever waits on I/O;
- cross-process: the refresh runs inside `vault.transaction()`, which re-reads the file under
  the file lock; when another process already rotated the tokens, theirs are used and the
  refresh token is not spent twice (a rotating AS would revoke the family);
- invalid_grant: the tokens are deleted (LoginRequired, one new login, never a loop);
  invalid_client: the dynamic registration is deleted too, so the next login registers again;
- 5xx / 429 / temporarily_unavailable, and refusals that leave the grant alive (invalid_scope,
  a malformed reply): the old token is used while it is still valid, and the next attempt
  waits (exponential backoff, or the AS's Retry-After), on the request path and in the
  background alike.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from mcp_bridge.auth.auth_records import (
    CLIENTS,
    TOKENS,
    StoredClient,
    StoredTokens,
    delete_server,
    put_client,
    put_context,
    put_tokens,
    read_client,
    read_context,
    read_stored_client,
    read_tokens,
    tokens_key,
)
from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.discovery import AuthorizationContext
from mcp_bridge.auth.dpop_proofs import ServerDpop
from mcp_bridge.auth.errors import AuthError, ClientRejected, LoginRequired
from mcp_bridge.auth.http_step import SessionSource, run_step
from mcp_bridge.auth.refresh_ahead import refresh_ahead
from mcp_bridge.auth.refresh_timing import (
    MARGIN_S,
    RefreshBackoff,
    refresh_margin_s,
    renewed_elsewhere,
)
from mcp_bridge.auth.single_flight import SingleFlight
from mcp_bridge.auth.token_endpoint import refresh_tokens, revoke_token
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy, canonical_resource
from mcp_bridge.store.base import CredentialVault, VaultTransaction

__all__ = ["LoginResult", "Renewal", "TokenManager"]

log = logging.getLogger(__name__)


# How tokens are renewed when a grant other than the refresh token's does it (a grant that
# needs no user is simply made again: machine_login.py), given the stored context, the
# stored client registration and the tokens to replace.
Renewal = Callable[[AuthorizationContext, ClientRegistration, TokenSet], Awaitable[TokenSet]]


@dataclass(frozen=True, slots=True)
class LoginResult:
    """What a completed browser login hands the manager to keep."""

    context: AuthorizationContext
    client: ClientRegistration
    tokens: TokenSet


class TokenManager:
    """Tokens for the MCP server at `mcp_url`; see the module docstring. All methods raise
    only AuthError subclasses or VaultError."""

    def __init__(
        self,
        mcp_url: str,
        vault: CredentialVault,
        *,
        policy: UrlPolicy,
        http: SessionSource,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mcp_url = mcp_url
        self.server_key = canonical_resource(mcp_url)
        self._vault = vault
        self._policy = policy
        self._session = http
        self._clock = clock
        self.context: AuthorizationContext | None = None
        self.client: ClientRegistration | None = None
        self._tokens: TokenSet | None = None
        self.dpop = ServerDpop(self.server_key, vault, clock=clock)  # its key, its nonces
        self._margin_s = MARGIN_S
        self._loaded = False
        self._load_lock = asyncio.Lock()
        self._refreshes: SingleFlight[TokenSet] = SingleFlight()
        self.changed = asyncio.Event()  # set whenever the tokens held change
        self._background: asyncio.Task[None] | None = None
        self._backoff = RefreshBackoff()
        self.refresh_count = 0  # refreshes this manager spent a refresh token on
        self.last_refresh_at: float | None = None  # when the last one succeeded (clock)
        # Told (with the reason) when a refresh finds the grant dead and the tokens are
        # dropped: the daemon tells the clients connected to the server.
        self.on_login_lost: Callable[[str], None] | None = None
        # Set by the provider for a grant that renews itself; None: the refresh token.
        self.renewal: Renewal | None = None

    # -- the fast path ----------------------------------------------------------------

    def usable_tokens(self) -> TokenSet | None:
        """The tokens if their access token is good for more than the refresh margin; no
        lock, no I/O. None means: call `fresh_tokens()`."""
        tokens = self._tokens
        if tokens is not None and not tokens.is_expired(self._clock(), margin_s=self._margin_s):
            return tokens
        return None

    @property
    def last_failure(self) -> str | None:
        """Why the last refresh failed, while its back-off lasts (for status)."""
        failure = self._backoff.last_failure
        return failure.what if failure is not None else None

    @property
    def tokens(self) -> TokenSet | None:
        """The tokens held in memory, whatever their age."""
        return self._tokens

    # -- loading, saving, forgetting ----------------------------------------------------

    async def load(self) -> None:
        """Read this server's records from the vault once (later calls return at once)."""
        if self._loaded:
            return
        async with self._load_lock:
            if self._loaded:
                return
            async with self._vault.transaction() as txn:
                self._read_all(txn)
            self._loaded = True

    async def reload(self) -> None:
        """Read this server's records again, whatever is held: another process may have
        logged in or refreshed meanwhile."""
        async with self._load_lock:
            async with self._vault.transaction() as txn:
                self._read_all(txn)
            self._loaded = True

    def _read_all(self, txn: VaultTransaction) -> None:
        self.dpop.read(txn)
        context = read_context(txn, self.server_key, mcp_url=self.mcp_url, policy=self._policy)
        if context is None:
            return
        self.context = context
        self.client = read_client(txn, context.issuer)
        self._adopt_stored(read_tokens(txn, context))

    def _adopt(self, tokens: TokenSet | None, received_at: float | None) -> None:
        self._tokens = tokens
        self._margin_s = MARGIN_S if tokens is None else refresh_margin_s(tokens, received_at)
        self.changed.set()

    def _adopt_stored(self, stored: StoredTokens | None) -> None:
        if stored is None:
            self._adopt(None, None)
        else:
            self._adopt(stored.tokens, stored.received_at)

    async def stored_client(self, issuer: str) -> StoredClient | None:
        """The registration the vault holds for `issuer` (for the login flow)."""
        async with self._vault.transaction() as txn:
            return read_stored_client(txn, issuer)

    async def save_client(self, client: ClientRegistration, scopes: tuple[str, ...]) -> None:
        """Keep a dynamic registration at once, before the login completes: a login that
        fails later must not register yet another client next time (docs/oauth-in-the-wild.md
        §4)."""
        if client.method is not RegistrationMethod.DCR:
            return
        async with self._vault.transaction() as txn:
            put_client(txn, client, scopes)

    async def save_login(self, login: LoginResult) -> None:
        """Keep what a browser login produced, and use it from now on."""
        received_at = self._clock()
        async with self._vault.transaction() as txn:
            put_context(txn, self.server_key, login.context)
            put_client(txn, login.client)
            put_tokens(txn, login.tokens, received_at)
        self.context, self.client = login.context, login.client
        self._loaded = True
        self._backoff.succeeded()
        self._adopt(login.tokens, received_at)

    async def forget(
        self, *, revoke: bool = True, client: ClientRegistration | None = None
    ) -> bool:
        """Logout: revoke at the AS when it offers revocation (RFC 7009; best effort), then
        delete this server's tokens and context. The client registration is kept: it belongs
        to the issuer, which other servers may share, and re-registering at every login
        leaves stale clients behind (docs/oauth-in-the-wild.md §4). True when the AS confirmed
        revocation. `client`: the client as it authenticates now (with its key), instead of
        the registration kept in the vault."""
        await self.load()
        revoked = False
        tokens, context, client = self._tokens, self.context, client or self.client
        if revoke and tokens is not None and context is not None and client is not None:
            try:
                step = revoke_token(context.auth_server, client, tokens)
                revoked = await run_step(step, self._session(), policy=self._policy)
            except AuthError as exc:
                log.warning("could not revoke the tokens of %s at the AS: %s", self.mcp_url, exc)
        async with self._vault.transaction() as txn:
            delete_server(txn, self.server_key, context)
        self.context = None
        self.dpop.forget()
        self._adopt(None, None)
        return revoked

    # -- getting a fresh token --------------------------------------------------------

    async def fresh_tokens(self) -> TokenSet:
        """Tokens whose access token can be sent now: the held ones, else loaded from the
        vault, else refreshed. Raises LoginRequired when only a browser login can help,
        AuthServerUnavailable when the AS is down and the old token has expired."""
        tokens = self.usable_tokens()
        if tokens is not None:
            return tokens
        await self.load()
        tokens = self._tokens
        if tokens is None:
            raise self._login_required("No stored login")
        now = self._clock()
        if tokens.refresh_token is None and self.renewal is None and not tokens.is_expired(now):
            # Nothing can renew it ahead of time: it serves until it expires, and only
            # then does a login (which the refresh below asks for) replace it.
            return tokens
        if tokens.is_expired(now, margin_s=self._margin_s):
            if now < self._backoff.retry_at:
                # A refresh failed a moment ago and kept the tokens: the AS was down, or it
                # refused (invalid_scope, a malformed reply) and would most likely refuse
                # again. Either way asking once per request would hammer it, so the request
                # path waits out the same backoff as the background loop.
                if not tokens.is_expired(now):
                    return tokens
                raise self._backoff.error(self.mcp_url, now)
            try:
                return await self.refresh()
            except LoginRequired:
                raise  # the grant is dead and the tokens are gone: only a login helps
            except AuthError:
                # Down or refused, the renewal was only ahead of time: the access token still
                # works, and failing this request would gain nothing. Once it expires, the
                # reason reaches the caller.
                if not tokens.is_expired(self._clock()):
                    return tokens
                raise
        return tokens

    async def refresh(self, *, rejected: TokenSet | None = None) -> TokenSet:
        """Renew the access token (single-flight: concurrent callers share one refresh).
        `rejected`: the tokens the resource just refused with a 401, so they are not
        adopted again. Raises LoginRequired, ClientRejected, AuthServerUnavailable."""
        return await asyncio.shield(self._refreshes.join(lambda: self._refresh_once(rejected)))

    async def _refresh_once(self, rejected: TokenSet | None) -> TokenSet:
        await self.load()
        known = rejected or self._tokens
        failure: AuthError | None = None
        fresh: TokenSet | None = None
        async with self._vault.transaction() as txn:
            context = self.context
            if context is None:
                raise self._login_required("No stored login")
            record = read_tokens(txn, context)
            dpop = self.dpop.read(txn)  # a login elsewhere may have made another key
            now = self._clock()
            if record is not None and renewed_elsewhere(record, known, now):
                # Another process (or manager) rotated them a moment ago: use theirs and spend
                # nothing; spending the old refresh token again would look like theft.
                log.debug("using tokens another process refreshed for %s", self.mcp_url)
                self._adopt_stored(record)
                return record.tokens
            current = record.tokens if record is not None else self._tokens
            client = read_client(txn, context.issuer) or self.client
            if current is None or client is None:
                raise self._login_required("No stored login")
            try:
                if self.renewal is not None:
                    fresh = await self.renewal(context, client, current)
                else:
                    step = refresh_tokens(context.auth_server, client, current, now=now, dpop=dpop)
                    fresh = await run_step(step, self._session(), policy=self._policy)
            except (LoginRequired, ClientRejected) as exc:
                # Committed on the way out: a dead grant must not be tried again (no loops).
                txn.delete(TOKENS, tokens_key(context.issuer, context.resource))
                if isinstance(exc, ClientRejected) and client.method is RegistrationMethod.DCR:
                    txn.delete(CLIENTS, context.issuer)  # the next login registers once more
                failure = exc
            except AuthError as exc:
                # Down (5xx, 429, a timeout) or refused without killing the grant
                # (invalid_scope, a malformed 200): the tokens are kept, so they are due at
                # once again, and without a pause the background loop would ask in a tight
                # loop and every request would ask too.
                delay = self._backoff.failed(exc, self._clock())
                log.warning(
                    "refresh for %s failed, retrying in %.0f s: %s", self.mcp_url, delay, exc
                )
                raise
            else:
                received_at = self._clock()
                put_tokens(txn, fresh, received_at)
        if failure is not None:
            log.info("refresh for %s refused: %s", self.mcp_url, failure)
            if isinstance(failure, ClientRejected):
                self.client = None
            self._adopt(None, None)
            if self.on_login_lost is not None:
                self.on_login_lost(failure.what)
            raise self._login_required(failure.what) from failure
        assert fresh is not None
        self.refresh_count += 1
        self.last_refresh_at = received_at
        self._backoff.succeeded()
        self._adopt(fresh, received_at)
        log.debug("refreshed the access token for %s", self.mcp_url)
        return fresh

    def _login_required(self, what: str) -> LoginRequired:
        return LoginRequired(
            f"{what} for {self.mcp_url}", next_step=f"Run `mcp-bridge login {self.mcp_url}`"
        )

    # -- background refresh -------------------------------------------------------------

    def start_background(self) -> None:
        """Refresh ahead of expiry while nobody calls (owned task; `aclose()` ends it)."""
        if self._background is None or self._background.done():
            self._background = asyncio.create_task(refresh_ahead(self, clock=self._clock))

    def refresh_due(self) -> float | None:
        """When the held tokens are next to be renewed ahead of expiry (on the manager's
        clock), the back-off included; None when nothing can renew them ahead of time."""
        tokens = self._tokens
        if tokens is None or tokens.expires_at is None:
            return None
        if not tokens.refresh_token and self.renewal is None:
            return None
        return max(tokens.expires_at - self._margin_s, self._backoff.retry_at)

    def defer_refresh(self, until: float) -> None:
        """No refresh before `until` (the background loop, when the vault failed it)."""
        self._backoff.defer(until)

    async def aclose(self) -> None:
        """Stop the background task and any refresh (the session is the owner's to close)."""
        background, self._background = self._background, None
        if background is not None and not background.done():
            background.cancel()
            await asyncio.gather(background, return_exceptions=True)
        await self._refreshes.cancel()
