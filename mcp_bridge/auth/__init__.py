"""The OAuth public client (MCP authorization, 2026-07-28 and the 2025 revisions).

Sans-I/O steps, one HTTP driver, and the pieces that touch the user:

    challenge.py       WWW-Authenticate -> BearerChallenge
    urlpolicy.py       which URLs may be fetched or opened; the canonical resource URI
    metadata.py        protected-resource and authorization-server metadata, checked once
    discovery.py       steps: PRM -> AS metadata (RFC 8414/OIDC order) or the 2025-03-26 path
    registration.py    which way to get a client id: pre-registered > CIMD > DCR
    client_identity.py ClientRegistration records per issuer; the configured client
    dynamic_registration.py   the RFC 7591 registration request and its answer
    pkce.py, scopes.py, authorize.py   the authorization request and its callback checks
    token_endpoint.py  code exchange, refresh, revocation
    token_set.py       TokenSet, and the token response read into one
    device_grant.py    the device authorization grant (RFC 8628) for `login --device`
    grants.py          client credentials; token exchange for an ID-JAG and its redemption
    jws.py, client_assertion.py        signed JWTs; private_key_jwt client assertions
    dpop.py, dpop_proofs.py   DPoP (RFC 9449): the key, the proofs, the nonces (docs/dpop.md)
    http_step.py       HttpRequest/HttpResponse, Step[T], and `run_step`, the one driver
    loopback.py, loopback_sockets.py   the redirect listener and the sockets it binds
    browser.py         the browser opener
    url_showing.py     whether our tab opens a sign-in URL, or a client shows it
    auth_records.py    how servers, clients and tokens are laid out in the vault
    settings.py, errors.py             OAuthSettings (the flags); the AuthError tree
    login.py, token_manager.py, provider.py   the flows that put the steps to work
    login_coordinator.py   which login a server gets, one at a time, braked, waited for
    machine_login.py   the grants without a browser (docs/grants.md), and their renewal
    refresh_timing.py  when to refresh, how long to back off after a failure
    refresh_ahead.py   the background loop that refreshes ahead of expiry while idle
    login_brake.py     the storm brake: no endless browser tabs for a failing login
    single_flight.py   one task per job (a refresh, a login) that every caller awaits
    on_demand.py       a provider built on the first 401/403, not at start

A step is a generator that yields HttpRequests and is sent HttpResponses; `run_step` does
the HTTP with each hop checked by the UrlPolicy. The login, in order:

    context = await run_step(discover(mcp_url, challenge, policy), session, policy=policy)
    client = await run_step(obtain_client(context.auth_server, client_metadata, ...), ...)
    request = build_authorization_request(context, client, redirect_uri=..., scopes=...)
    waiting = listener.expect(request.pending.state, partial(validate_callback, request.pending))
    await open_in_browser(request.url); code = await waiting.result()
    tokens = await run_step(exchange_code(...), ...)

`remote` never imports this package: transports see only the CredentialProvider protocol
that provider.py implements.
"""
