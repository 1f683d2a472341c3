"""DPoP at the demo servers (auth_modes `dpop`), in front of the SDK's routes, which know
only Bearer tokens. Proofs are checked by dpop_checks.py.

Authorization endpoint (RFC 9449 §10): a request's `dpop_jkt` (GET query or POST form)
binds the code it makes to that key thumbprint (auth_provider.requested_dpop_jkt), through
the consent page too. The value is not checked there: a code bound to a thumbprint no key
has is one nobody can redeem.

Token endpoint (RFC 9449 §5, §8, §10): a request with a proof gets its tokens bound to the
proof's key: the token records keep the key's thumbprint (`jkt`, as `cnf.jkt` would carry
it) and the answer says `token_type: DPoP`. A code bound by `dpop_jkt` is redeemed only
with a proof whose key has that thumbprint: another key's proof, or none, gets 400
`invalid_grant`, and the code stays unspent. A refresh token bound to a key is redeemed
only with a proof of that key. In `dpop_nonce` mode a proof without the AS's current nonce
gets 400 `use_dpop_nonce` and the nonce in `DPoP-Nonce`. Any other request without a proof
gets Bearer tokens, as from an AS that does not do DPoP.

Resource (RFC 9449 §7): `Authorization: DPoP <token>` with a proof whose key is the one the
token is bound to is passed on as the Bearer token the SDK checks; anything else about it
is refused with a 401 `WWW-Authenticate: DPoP error=...` naming what was wrong, a bound
token sent as Bearer included. Every 401 also offers `DPoP algs="ES256"`. In `dpop_nonce`
mode the RS wants its nonce (401 `use_dpop_nonce`), and with `dpop_nonce_rotate_every`
moves to a new one now and then, sent on the answer that accepted the last request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from starlette.responses import JSONResponse, Response

from mcp_bridge.demo.asgi import ASGIApp, Message, Receive, Scope, Send, read_body, replay
from mcp_bridge.demo.auth_provider import FixtureProvider, requested_dpop_jkt
from mcp_bridge.demo.dpop_checks import DpopRefused, NonceIssuer, ProofVerifier, RequestFacts

__all__ = ["dpop_as_edge", "dpop_resource_edge"]

OFFER = 'DPoP algs="ES256"'


def _header_values(scope: Scope, name: bytes) -> list[str]:
    return [value.decode("latin-1") for key, value in scope["headers"] if key.lower() == name]


def _request_url(scope: Scope) -> str:
    host = (_header_values(scope, b"host") or ["localhost"])[0]
    return f"{scope['scheme']}://{host}{scope['path']}"


def _verifier(provider: FixtureProvider) -> ProofVerifier:
    modes = provider.modes
    wants_nonce = modes.dpop_nonce or modes.dpop_nonce_never_accepted
    return ProofVerifier(modes.dpop_iat_window_s, NonceIssuer() if wants_nonce else None)


def _refusal(
    provider: FixtureProvider,
    verifier: ProofVerifier,
    refusal: DpopRefused,
    status: int,
    headers: dict[str, str],
) -> Response:
    """The error answer (400 from the AS, 401 from the RS), with the server's nonce when
    that is what the proof lacked; counted either way."""
    if refusal.error == "use_dpop_nonce" and verifier.nonces is not None:
        side = "as" if status == 400 else "rs"
        provider.stats[f"dpop_{side}_nonce_challenges"] += 1
        headers["DPoP-Nonce"] = verifier.nonces.current
    else:
        provider.stats["dpop_refusals"] += 1
        provider.last["dpop_refusal"] = refusal.description
    doc = {"error": refusal.error, "error_description": refusal.description}
    return JSONResponse(doc, status, headers=headers)


# -- the authorization server --------------------------------------------------------------


def dpop_as_edge(app: ASGIApp, provider: FixtureProvider) -> ASGIApp:
    verifier = _verifier(provider)

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == "/authorize":
            await _authorize_naming_key(app, scope, receive, send)
            return
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != "/token":
            await app(scope, receive, send)
            return
        body = await read_body(receive)
        form = _form_of(body)
        try:
            jkt = _token_request_key(provider, verifier, scope, form)
        except DpopRefused as refusal:
            await _refusal(provider, verifier, refusal, 400, {})(scope, receive, send)
            return
        if jkt is None:
            await app(scope, replay(body, receive), send)
        else:
            await app(scope, replay(body, receive), _binding(send, provider, jkt))

    return edge


async def _authorize_naming_key(app: ASGIApp, scope: Scope, receive: Receive, send: Send) -> None:
    """The SDK's /authorize, with the request's `dpop_jkt` where the provider reads it."""
    fields = parse_qsl(scope["query_string"].decode("latin-1"))
    if scope["method"] == "POST":
        body = await read_body(receive)
        receive = replay(body, receive)
        fields = parse_qsl(body.decode("latin-1"))
    jkt = dict(fields).get("dpop_jkt") or None
    token = requested_dpop_jkt.set(jkt)
    try:
        await app(scope, receive, send)
    finally:
        requested_dpop_jkt.reset(token)


def _form_of(body: bytes) -> dict[str, str]:
    """The token request's fields, from a form or (the `token_json_only` mode) JSON."""
    try:
        doc = json.loads(body)
    except ValueError:
        doc = None
    if isinstance(doc, dict):
        return {str(k): str(v) for k, v in doc.items()}
    return dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))


def _token_request_key(
    provider: FixtureProvider, verifier: ProofVerifier, scope: Scope, form: dict[str, str]
) -> str | None:
    """The thumbprint of the proof's key, None without a proof; DpopRefused for a bad
    proof, or a code or refresh token bound to a key this request does not prove."""
    proofs = _header_values(scope, b"dpop")
    bound = _grant_binding(provider, form)
    if not proofs:
        if bound is not None:
            raise bound.unproven
        return None
    if provider.modes.dpop_nonce_never_accepted and verifier.nonces is not None:
        verifier.nonces.rotate()  # hostile: whatever nonce the proof names is stale now
    jkt = verifier.verify(proofs, RequestFacts("POST", _request_url(scope)), time.time())
    if bound is not None and bound.jkt != jkt:
        raise bound.other_key
    return jkt


class GrantBinding(NamedTuple):
    """The key a grant is bound to, and the refusals of a request that proves no key and
    of one that proves another."""

    jkt: str
    unproven: DpopRefused
    other_key: DpopRefused


def _grant_binding(provider: FixtureProvider, form: dict[str, str]) -> GrantBinding | None:
    match form.get("grant_type"):
        case "refresh_token":
            record = provider.tokens.refresh.get(form.get("refresh_token", ""))
            if record is None or record.jkt is None:
                return None
            return GrantBinding(
                record.jkt,
                DpopRefused(
                    "invalid_dpop_proof", "this refresh token is bound to a DPoP key: send a proof"
                ),
                DpopRefused("invalid_grant", "this refresh token is bound to another DPoP key"),
            )
        case "authorization_code":  # RFC 9449 §10: the request named the key (dpop_jkt)
            code = provider.codes.get(form.get("code", ""))
            if code is None or code.jkt is None:
                return None
            return GrantBinding(
                code.jkt,
                DpopRefused(
                    "invalid_grant",
                    "this code is bound to a DPoP key (dpop_jkt): send a DPoP proof",
                ),
                DpopRefused(
                    "invalid_grant",
                    "this code is bound (dpop_jkt) to another DPoP key than this proof's",
                ),
            )
    return None


def _binding(send: Send, provider: FixtureProvider, jkt: str) -> Send:
    """A `send` that holds a successful token response back, binds its tokens to `jkt` and
    makes it say `token_type: DPoP`."""
    start: Message | None = None
    chunks: list[bytes] = []

    async def bind(message: Message) -> None:
        nonlocal start
        if message["type"] == "http.response.start" and message["status"] == 200:
            start = message
            return
        if start is None or message["type"] != "http.response.body":
            await send(message)
            return
        chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        body = _bound_response(provider, b"".join(chunks), jkt)
        headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({**start, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return bind


def _bound_response(provider: FixtureProvider, body: bytes, jkt: str) -> bytes:
    doc: dict[str, Any] = json.loads(body)
    access = provider.tokens.access.get(doc.get("access_token", ""))
    if access is not None:
        provider.tokens.access[access.token] = access.model_copy(update={"jkt": jkt})
    refresh = provider.tokens.refresh.get(doc.get("refresh_token", ""))
    if refresh is not None:
        provider.tokens.refresh[refresh.token] = refresh.model_copy(update={"jkt": jkt})
    provider.stats["dpop_bound_grants"] += 1
    return json.dumps({**doc, "token_type": "DPoP"}).encode()


# -- the resource --------------------------------------------------------------------------


def dpop_resource_edge(app: ASGIApp, provider: FixtureProvider) -> ASGIApp:
    verifier = _verifier(provider)
    accepted = 0

    async def edge(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal accepted
        if scope["type"] != "http" or scope["path"] != "/mcp":
            await app(scope, receive, send)
            return
        send = _offering_dpop(send)
        scheme, _, token = (_header_values(scope, b"authorization") or [""])[0].partition(" ")
        try:
            if scheme.lower() == "bearer":
                _refuse_bound_bearer(provider, token)
            if scheme.lower() != "dpop":
                await app(scope, receive, send)  # no token, or Bearer: the SDK's business
                return
            facts = RequestFacts(scope["method"], _request_url(scope), token)
            jkt = verifier.verify(_header_values(scope, b"dpop"), facts, time.time())
            record = provider.tokens.access.get(token)
            if record is not None and record.jkt != jkt:
                raise DpopRefused("invalid_token", "the token is not bound to the proof's key")
        except DpopRefused as refusal:
            await _resource_refusal(provider, verifier, refusal)(scope, receive, send)
            return
        provider.stats["dpop_resource_requests"] += 1
        accepted += 1
        every = provider.modes.dpop_nonce_rotate_every
        if every and verifier.nonces is not None and accepted % every == 0:
            send = _with_header(send, b"dpop-nonce", verifier.nonces.rotate())
        await app(_as_bearer(scope, token), receive, send)

    return edge


def _refuse_bound_bearer(provider: FixtureProvider, token: str) -> None:
    record = provider.tokens.access.get(token)
    if record is not None and record.jkt is not None:
        raise DpopRefused(
            "invalid_token",
            "this token is bound to a DPoP key: send it with the DPoP scheme and a proof",
        )


def _resource_refusal(
    provider: FixtureProvider, verifier: ProofVerifier, refusal: DpopRefused
) -> Response:
    description = refusal.description.replace('"', "'")
    headers = {
        "WWW-Authenticate": f'DPoP error="{refusal.error}", '
        f'error_description="{description}", algs="ES256"'
    }
    return _refusal(provider, verifier, refusal, 401, headers)


def _as_bearer(scope: Scope, token: str) -> Scope:
    """The request as the SDK's bearer middleware reads it: the proven token as Bearer."""
    kept: Iterable[tuple[bytes, bytes]] = (
        (k, v) for k, v in scope["headers"] if k.lower() not in (b"authorization", b"dpop")
    )
    return {**scope, "headers": [*kept, (b"authorization", f"Bearer {token}".encode())]}


def _offering_dpop(send: Send) -> Send:
    """A `send` that adds the DPoP challenge to a 401's WWW-Authenticate (RFC 9449 §7.1)."""

    async def offering(message: Message) -> None:
        if message["type"] == "http.response.start" and message["status"] == 401:
            headers = list(message["headers"])
            found = [i for i, (key, _) in enumerate(headers) if key.lower() == b"www-authenticate"]
            if not found:
                headers.append((b"www-authenticate", OFFER.encode()))
            elif b"dpop" not in headers[found[0]][1].lower():
                # One field with both challenges: many clients read only the first field.
                key, value = headers[found[0]]
                headers[found[0]] = (key, value + b", " + OFFER.encode())
            message = {**message, "headers": headers}
        await send(message)

    return offering


def _with_header(send: Send, name: bytes, value: str) -> Send:
    async def adding(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message["headers"], (name, value.encode())]}
        await send(message)

    return adding
