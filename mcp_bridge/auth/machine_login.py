"""MachineLogin: tokens without a browser, for `--grant client-credentials` and `--grant
enterprise` (docs/grants.md). It stands where BrowserLogin stands for the provider (`run`
makes a login) and gives the token manager its renewal (`renew`): such a grant is simply
made again when the token runs out, with no user to ask.

The I/O edge of grants.py: it discovers the authorization server as a browser login
would, reads the key files and the ID token file each time it needs them (so a rotated
key or a fresh ID token is picked up without a restart), looks up the client secret a
login left in the vault when none is configured, and runs the steps, the identity
provider's under a URL policy of its own (the user named it; it is not discovered).
"""

from __future__ import annotations

import logging
import os
import stat

from mcp_bridge.auth.client_assertion import ClientAssertions
from mcp_bridge.auth.client_identity import ClientRegistration, RegistrationMethod
from mcp_bridge.auth.discovery import (
    AuthorizationContext,
    AuthServerQuirks,
    find_auth_server_metadata,
)
from mcp_bridge.auth.dpop_proofs import DpopProofs
from mcp_bridge.auth.grants import (
    ID_JAG_PROFILE,
    check_id_token,
    redeem_id_jag,
    request_client_credentials,
    request_id_jag,
)
from mcp_bridge.auth.http_step import Step, run_step
from mcp_bridge.auth.jws import SigningKey
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.registration import auth_method_for_secret
from mcp_bridge.auth.scopes import login_scopes
from mcp_bridge.auth.settings import Grant
from mcp_bridge.auth.sign_in import SignInPlan, SignInSteps
from mcp_bridge.auth.token_endpoint import refresh_tokens
from mcp_bridge.auth.token_manager import LoginResult
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from mcp_bridge.errors import ConfigError

__all__ = ["MachineLogin", "read_signing_key"]

log = logging.getLogger(__name__)

_MAX_FILE_BYTES = 64 * 1024  # a PEM key or an ID token is a few KiB


def _read_small_file(path: str, what: str, flag: str) -> bytes:
    try:
        with open(path, "rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            data = file.read(_MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the {what} {path}: {exc.strerror}", next_step=f"Check {flag}"
        ) from None
    if len(data) > _MAX_FILE_BYTES:
        raise ConfigError(f"The {what} {path} is too large to be one", next_step=f"Check {flag}")
    if what.endswith("key file") and mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("%s is readable by other users; `chmod 600` it", path)
    return data


def read_signing_key(path: str, *, flag: str, key_id: str | None = None) -> SigningKey:
    """The private key in the file `path` (given with `flag`); ConfigError saying what is
    wrong with it. Read at each use, and by `mcp-bridge add` before it stores the path."""
    return SigningKey.from_pem(
        _read_small_file(path, "client key file", flag), source=path, key_id=key_id
    )


class MachineLogin(SignInSteps):
    """One server's grant without a browser; see the module docstring. Holds only the
    identity provider's metadata between runs. Its sign-in steps are a browser login's
    (sign_in.py), its scopes without offline_access, and no URL is ever pending."""

    _idp: AuthServerMetadata | None = None  # the identity provider's, once fetched

    async def _grant(self, plan: SignInPlan) -> LoginResult:
        """Make the grant (`run`). Raises AuthError (the refusal names what to fix) or
        ConfigError (an unreadable key or ID token file)."""
        context = plan.context
        stored = await self._clients.stored_client(context.issuer)
        client = self.client_at(context.auth_server, stored.registration if stored else None)
        dpop = await self.dpop_proofs(context, plan.challenge)
        tokens = await self._request_tokens(context, client, plan.scopes, plan.quirks, dpop)
        log.info(
            "obtained a token for %s at %s (%s, scopes: %s)",
            self.mcp_url,
            context.issuer,
            self.settings.grant.value,
            " ".join(tokens.scopes) or "-",
        )
        return LoginResult(context, client, tokens)

    async def renew(
        self, context: AuthorizationContext, stored: ClientRegistration, tokens: TokenSet
    ) -> TokenSet:
        """New tokens for old (TokenManager.renewal): the refresh token if the server gave
        one, else the grant once more for the scopes it granted."""
        client = self.client_at(context.auth_server, stored)
        # The key the token manager read in the refresh's vault transaction: one to make
        # here would need another transaction inside that one. A server with a key asked
        # for DPoP before; without one the grant asks for Bearer tokens, and if the server
        # refuses those, its 401 leads to `run`, which makes the key.
        dpop = self._dpop.proofs if self._dpop is not None else None
        if tokens.refresh_token is not None:
            step = refresh_tokens(context.auth_server, client, tokens, now=self._clock(), dpop=dpop)
            return await run_step(step, self._session(), policy=self._policy)
        return await self._request_tokens(context, client, tokens.scopes, tokens.quirks, dpop)

    def scopes_for(
        self, context: AuthorizationContext, previous: tuple[str, ...]
    ) -> tuple[str, ...]:
        """As a browser login's, without offline_access: the grant itself is the way to
        a new token."""
        return login_scopes(
            context, previous=previous, configured=self.settings.scopes, offline=False
        )

    # -- the grant --------------------------------------------------------------------

    async def _request_tokens(
        self,
        context: AuthorizationContext,
        client: ClientRegistration,
        scopes: tuple[str, ...],
        quirks: AuthServerQuirks,
        dpop: DpopProofs | None,
    ) -> TokenSet:
        metadata = context.auth_server
        step: Step[TokenSet]
        if self.settings.grant is Grant.CLIENT_CREDENTIALS:
            step = request_client_credentials(
                metadata,
                client,
                resource=context.resource,
                scopes=scopes,
                quirks=quirks,
                now=self._clock(),
                dpop=dpop,
            )
        else:
            jag = await self._id_jag(context, scopes)
            step = redeem_id_jag(
                metadata,
                client,
                jag,
                idp_issuer=str(self.settings.idp_issuer),
                resource=context.resource,
                scopes=scopes,
                quirks=quirks,
                now=self._clock(),
                dpop=dpop,
            )
        return await run_step(step, self._session(), policy=self._policy)

    async def _id_jag(self, context: AuthorizationContext, scopes: tuple[str, ...]) -> str:
        """An ID-JAG for this server from the identity provider, for the ID token in the
        file as it is now."""
        settings = self.settings
        assert settings.idp_issuer is not None
        assert settings.id_token_file is not None
        source = settings.id_token_file
        text = _read_small_file(source, "ID token file", "--id-token-file")
        id_token = check_id_token(text.decode("utf-8", "replace"), source=source, now=self._clock())
        profiles = context.auth_server.authorization_grant_profiles_supported
        if profiles and ID_JAG_PROFILE not in profiles:
            log.warning("%s does not list the ID-JAG grant profile; trying it", context.issuer)
        policy = UrlPolicy.for_server(settings.idp_issuer, allow_http=settings.allow_http)
        if self._idp is None:
            find = find_auth_server_metadata(settings.idp_issuer, policy)
            self._idp = await run_step(find, self._session(), policy=policy)
        exchange = request_id_jag(
            self._idp,
            self._idp_client(self._idp),
            id_token=id_token,
            audience=context.issuer,
            resource=context.resource,
            scopes=scopes,
        )
        return await run_step(exchange, self._session(), policy=policy)

    # -- the clients ------------------------------------------------------------------

    def client_at(
        self, metadata: AuthServerMetadata, stored: ClientRegistration | None
    ) -> ClientRegistration:
        """This client at the MCP server's authorization server, from the flags, a key
        read from its file, or the secret a login kept in the vault (`stored`)."""
        settings = self.settings
        if settings.client_id is None:  # enterprise with a client metadata document
            assert settings.client_metadata_url is not None
            return ClientRegistration(
                issuer=metadata.issuer,
                client_id=settings.client_metadata_url,
                method=RegistrationMethod.CIMD,
                token_endpoint_auth_method="none",
            )
        secret = settings.client_secret
        if secret is None and stored is not None and stored.client_id == settings.client_id:
            secret = stored.client_secret
        if (
            settings.grant is Grant.CLIENT_CREDENTIALS
            and secret is None
            and settings.client_key_file is None
        ):
            raise ConfigError(
                f"--grant client-credentials needs the secret or key of client "
                f"{settings.client_id}",
                next_step="Set MCP_BRIDGE_CLIENT_SECRET (once is enough: `mcp-bridge login` "
                "keeps it in the vault), or pass --client-key-file",
            )
        return self._registration(
            metadata,
            settings.client_id,
            secret,
            settings.client_key_file,
            flag="--client-key-file",
        )

    def _idp_client(self, idp: AuthServerMetadata) -> ClientRegistration:
        settings = self.settings
        assert settings.idp_client_id is not None
        return self._registration(
            idp,
            settings.idp_client_id,
            settings.idp_client_secret,
            settings.idp_client_key_file,
            flag="--idp-client-key-file",
        )

    def _registration(
        self,
        metadata: AuthServerMetadata,
        client_id: str,
        secret: str | None,
        key_file: str | None,
        *,
        flag: str,
    ) -> ClientRegistration:
        method = "none"
        assertions = None
        if key_file is not None:
            key_id = self.settings.client_key_id if flag == "--client-key-file" else None
            key = read_signing_key(key_file, flag=flag, key_id=key_id)
            algs = metadata.token_endpoint_auth_signing_alg_values_supported
            if algs and key.alg not in algs:
                raise ConfigError(
                    f"{metadata.issuer} verifies client assertions signed with "
                    f"{', '.join(algs)}; the key in {key_file} signs {key.alg}",
                    next_step=f"Register a key of a kind it takes, and pass it with {flag}",
                )
            method, assertions = "private_key_jwt", ClientAssertions(key, self._clock)
        elif secret is not None:
            method = auth_method_for_secret(metadata)
        return ClientRegistration(
            issuer=metadata.issuer,
            client_id=client_id,
            method=RegistrationMethod.PRE_REGISTERED,
            token_endpoint_auth_method=method,
            client_secret=secret if assertions is None else None,
            assertions=assertions,
        )
