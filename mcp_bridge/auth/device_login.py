"""The device login (`--device`, RFC 8628): for a machine whose browser cannot reach our
loopback listener (SSH sessions, containers). After the sign-in steps every login shares
(sign_in.py), the user is shown a URL and a code to enter on any device while we poll the
token endpoint; the steps themselves are in device_grant.py.

The device requests go out the way the issuer was found to need, as the browser login's
do, and learn the same way (token_endpoint.post_grant): a JSON-only endpoint, a refused
RFC 8707 `resource` (`--no-resource` skips it from the start). What worked rides on the
tokens to the vault.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.device_grant import (
    MAX_INTERVAL_S,
    SLOW_DOWN_STEP_S,
    DeviceAuthorization,
    DeviceClientMetadata,
    DevicePoll,
    poll_device_token,
    request_device_code,
)
from mcp_bridge.auth.discovery import AuthorizationContext
from mcp_bridge.auth.dpop_proofs import DpopProofs
from mcp_bridge.auth.errors import AuthError, sanitize_remote_text
from mcp_bridge.auth.http_step import run_step
from mcp_bridge.auth.sign_in import SignInPlan, SignInSteps
from mcp_bridge.auth.token_manager import LoginResult
from mcp_bridge.auth.token_set import TokenSet

__all__ = ["DEVICE_REDIRECT_URI", "DeviceLogin"]

log = logging.getLogger(__name__)

# The device grant needs no redirect, but registration (and the SDK's AS) wants one; a fixed
# loopback URI keeps a device-login registration reusable (ClientRegistration.is_usable).
DEVICE_REDIRECT_URI = "http://127.0.0.1/callback"


class DeviceLogin(SignInSteps):
    """One server's device login (`run`). Holds no state between runs."""

    async def _grant(self, plan: SignInPlan) -> LoginResult:
        """The device grant's part of `run`: AuthError when the AS offers no device login,
        the user refuses, or the code (or `settings.timeout_s`) runs out."""
        context, scopes = plan.context, plan.scopes
        metadata = context.auth_server
        # request_device_code checks this too; asking first spares a registration.
        if metadata.device_authorization_endpoint is None:
            raise AuthError(
                f"The authorization server {metadata.issuer} offers no device login",
                next_step="Log in without --device (the browser login)",
            )
        reusable = await self.reusable_client(context.issuer, scopes)
        client = await self.client_for(
            context, DEVICE_REDIRECT_URI, scopes, reusable, kind=DeviceClientMetadata
        )
        step = request_device_code(
            metadata,
            client,
            scopes=scopes,
            resource=context.resource,
            quirks=plan.quirks,
            now=self._clock(),
        )
        device = await run_step(step, self._session(), policy=self._policy)
        # Made (and kept) before the user is shown the code: the tokens are never kept
        # without the key they are bound to.
        dpop = await self.dpop_proofs(context, plan.challenge)
        await self._show(device)
        try:
            async with asyncio.timeout(self.settings.timeout_s):
                tokens = await self._poll(context, client, device, scopes, dpop)
        except TimeoutError:
            raise AuthError(
                f"No device sign-in within {self.settings.timeout_s:.0f} s",
                next_step=f"Run `mcp-bridge login {self.mcp_url} --device` again",
            ) from None
        finally:
            self._withdraw()
        log.info("logged in to %s at %s (device)", self.mcp_url, context.issuer)
        return LoginResult(context, client, tokens)

    async def _show(self, device: DeviceAuthorization) -> None:
        page = device.verification_uri_complete or device.verification_uri
        tab = False
        try:
            self._policy.check_browser(page)
        except AuthError as exc:  # not a URL to hand a client: the code is still shown
            log.info("not handing out the device verification URL: %s", exc)
        else:
            # Only the page that carries the code is worth a tab: the user must type the
            # code on the plain one, and reads it where the code is shown anyway.
            complete = device.verification_uri_complete
            tab = self._publish(page, device.user_code, tab_url=complete)
        where = sanitize_remote_text(device.verification_uri, max_chars=500)
        self._notify(
            f"mcp-bridge: to sign in to {self.mcp_url}, open {where} on any device "
            f"and enter the code {device.user_code}"
        )
        if tab and device.verification_uri_complete is not None:
            try:
                await self.open_tab(device.verification_uri_complete)
            except AuthError as exc:  # a URL we will not open: the user types the code
                log.info("not opening the device verification URL: %s", exc)

    async def _poll(
        self,
        context: AuthorizationContext,
        client: ClientRegistration,
        device: DeviceAuthorization,
        scopes: tuple[str, ...],
        dpop: DpopProofs | None,
    ) -> TokenSet:
        interval_s = device.interval_s
        while True:
            await asyncio.sleep(interval_s)
            if self._clock() >= device.expires_at:
                raise AuthError(
                    "The device code expired before the sign-in was finished",
                    next_step="Run the login again and finish it sooner",
                )
            poll = poll_device_token(
                context.auth_server,
                client,
                device,
                resource=context.resource,
                scopes=scopes,
                now=self._clock(),
                use_id_token=self.settings.use_id_token,
                dpop=dpop,
            )
            result, quirks = await run_step(poll, self._session(), policy=self._policy)
            # What a poll had to learn (a refused `resource`), the next poll starts with.
            device = replace(device, quirks=quirks)
            if result is DevicePoll.SLOW_DOWN:
                # RFC 8628 §3.5 adds 5 s per slow_down; an AS that says it forever must not
                # stretch the polling past the clamp of the interval.
                interval_s = min(interval_s + SLOW_DOWN_STEP_S, MAX_INTERVAL_S)
            elif isinstance(result, TokenSet):
                return result
