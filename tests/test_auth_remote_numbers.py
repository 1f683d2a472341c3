"""Numbers and JSON shapes an authorization server sends (issue 8): a 400-digit `expires_in`,
NaN, a negative lifetime, a device `interval` of 0, JSON nested past the recursion limit.
Each is clamped to a sane range or refused with an AuthError that names the field and the
server; none ends as a traceback, a busy loop, or a token that "never expires"."""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Mapping
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcp_bridge.auth.client_identity import ClientRegistration
from mcp_bridge.auth.device_grant import (
    DEFAULT_INTERVAL_S,
    MAX_EXPIRES_IN_S,
    MAX_INTERVAL_S,
    MIN_INTERVAL_S,
    DeviceAuthorization,
    poll_device_token,
    request_device_code,
)
from mcp_bridge.auth.dynamic_registration import (
    MAX_SECRET_LIFETIME_S,
    ClientMetadata,
    register_client,
)
from mcp_bridge.auth.errors import (
    AuthError,
    AuthResponseInvalid,
    AuthServerUnavailable,
    RegistrationFailed,
)
from mcp_bridge.auth.http_step import HttpResponse
from mcp_bridge.auth.metadata import AuthServerMetadata
from mcp_bridge.auth.token_endpoint import MAX_RETRY_AFTER_S, exchange_code, refresh_tokens
from mcp_bridge.auth.token_set import MAX_TOKEN_LIFETIME_S, TokenSet
from mcp_bridge.auth.urlpolicy import UrlPolicy
from tests.fixtures.example_login import AS as TOKEN_AS
from tests.fixtures.example_login import ISSUER, MCP, NOW, PENDING, PUBLIC, REDIRECT, TOKENS
from tests.fixtures.http_steps import finish

AS = replace(
    TOKEN_AS,
    registration_endpoint=f"{ISSUER}/register",
    device_authorization_endpoint=f"{ISSUER}/device",
)

HUGE = "1" + "0" * 399  # 400 digits: json.loads reads it, float() of it overflows
TOO_LONG = "9" * 5000  # past CPython's int-string limit: json.loads itself raises ValueError
DEEP = b"[" * 100_000 + b"]" * 100_000  # json.loads raises RecursionError


def raw(body: bytes, status: int = 200, url: str = "") -> HttpResponse:
    return HttpResponse(status, body, (("Content-Type", "application/json"),), url)


def with_field(doc: Mapping[str, object], key: str, value_text: str) -> bytes:
    """`doc` as JSON with `key` set to `value_text` written as is (NaN, 1e400, 400 digits)."""
    return json.dumps({**doc, key: "@@"}).replace('"@@"', value_text).encode()


def exchanged(response: HttpResponse) -> TokenSet:
    step = exchange_code(AS, PUBLIC, PENDING, "code", now=NOW)
    next(step)
    return finish(step, response)


TOKEN_DOC: dict[str, object] = {"access_token": "a", "token_type": "Bearer"}


def token_with_expires_in(value_text: str) -> HttpResponse:
    return raw(with_field(TOKEN_DOC, "expires_in", value_text), url=f"{ISSUER}/token")


# -- the JSON itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "body", [DEEP, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, TOO_LONG.encode(), b"\xff{"]
)
def test_json_that_cannot_be_read_is_the_steps_named_error(body: bytes) -> None:
    response = raw(body, url=f"{ISSUER}/token")
    with pytest.raises(AuthResponseInvalid, match=f"token response at {ISSUER}/token"):
        response.json(what="token response")
    assert response.json_or_none() is None


def test_a_deeply_nested_token_response_is_refused() -> None:
    with pytest.raises(AuthResponseInvalid, match="not valid JSON"):
        exchanged(raw(DEEP))


def test_a_deeply_nested_token_error_is_still_the_token_error() -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    with pytest.raises(AuthError, match="HTTP 400"):
        step.send(raw(DEEP, status=400))


# -- token responses (RFC 6749 §5.1) --------------------------------------------------------


@pytest.mark.parametrize(
    ("value_text", "lifetime_s"),
    [
        ("3600", 3600.0),
        ("1.5", 1.5),
        ('"60"', 60.0),  # a string of digits: seen in the wild
        (" 1e3", 1000.0),
        (str(10**10), MAX_TOKEN_LIFETIME_S),
        (HUGE, MAX_TOKEN_LIFETIME_S),
        (f'"{HUGE}"', MAX_TOKEN_LIFETIME_S),
        (f'"{TOO_LONG}"', MAX_TOKEN_LIFETIME_S),  # a string: no int-string limit in json
        ("1e400", MAX_TOKEN_LIFETIME_S),  # Python reads it as inf
        ("Infinity", MAX_TOKEN_LIFETIME_S),
    ],
)
def test_expires_in_is_read_and_clamped_to_a_year(value_text: str, lifetime_s: float) -> None:
    tokens = exchanged(token_with_expires_in(value_text))
    assert tokens.expires_at == NOW + lifetime_s


@pytest.mark.parametrize(
    "value_text",
    [
        "0",
        "-0.0",
        "-5",
        f"-{HUGE}",
        "-1e400",
        "NaN",
        "-Infinity",
        "true",
        "false",
        '"soon"',
        '"-5"',
        '"1.5"',
        '"\u00b2"',  # "²".isdigit() is True, int("²") raises ValueError
        '"\\u001b[2J3600"',
        "[]",
        "{}",
        "[" * 500 + "]" * 500,
    ],
)
def test_expires_in_that_is_no_lifetime_is_refused(value_text: str) -> None:
    """Not "never expires": a negative or NaN lifetime is a broken server, not a forever token."""
    with pytest.raises(AuthResponseInvalid, match="expires_in") as refused:
        exchanged(token_with_expires_in(value_text))
    assert ISSUER in refused.value.what
    assert "\x1b" not in refused.value.what
    assert refused.value.next_step


@pytest.mark.parametrize(
    "response", [raw(json.dumps(TOKEN_DOC).encode()), token_with_expires_in("null")]
)
def test_absent_expires_in_means_the_server_did_not_say(response: HttpResponse) -> None:
    assert exchanged(response).expires_at is None


@pytest.mark.parametrize(
    ("header", "retry_after_s"),
    [
        ("17", 17.0),
        ("\u00b2", None),  # isdigit() but not a number int() or float() reads
        ("9" * 400, MAX_RETRY_AFTER_S),
        ("-5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_retry_after_is_bounded(header: str, retry_after_s: float | None) -> None:
    step = refresh_tokens(AS, PUBLIC, TOKENS, now=NOW)
    next(step)
    with pytest.raises(AuthServerUnavailable) as raised:
        step.send(HttpResponse(429, b"", (("Retry-After", header),)))
    assert raised.value.retry_after_s == retry_after_s


@pytest.mark.parametrize(
    "expires_at",
    [10**400, float("nan"), float("inf"), "soon", True],
    ids=["400 digits", "nan", "inf", "text", "bool"],
)
def test_a_stored_token_set_with_an_unusable_expiry_is_damaged(expires_at: object) -> None:
    doc = {**TOKENS.to_json(), "expires_at": expires_at}
    with pytest.raises(AuthResponseInvalid, match="damaged"):
        TokenSet.from_json(doc)


# -- device authorization (RFC 8628 §3.2, §3.5) ---------------------------------------------

DEVICE_DOC: dict[str, object] = {
    "device_code": "dev",
    "user_code": "WDJB-MJHT",
    "verification_uri": f"{ISSUER}/activate",
}


def device_answer(body: bytes) -> DeviceAuthorization:
    step = request_device_code(AS, PUBLIC, scopes=(), resource=MCP, now=NOW)
    next(step)
    return finish(step, raw(body, url=f"{ISSUER}/device"))


@pytest.mark.parametrize(
    ("value_text", "interval_s"),
    [
        ("0", MIN_INTERVAL_S),  # would poll in a busy loop
        ("0.001", MIN_INTERVAL_S),
        ("-3", MIN_INTERVAL_S),
        ("-Infinity", MIN_INTERVAL_S),
        ("7", 7.0),
        ('"7"', 7.0),
        ("3600", MAX_INTERVAL_S),
        (HUGE, MAX_INTERVAL_S),
        ("1e400", MAX_INTERVAL_S),
        ("null", DEFAULT_INTERVAL_S),
        ("NaN", DEFAULT_INTERVAL_S),
        ("true", DEFAULT_INTERVAL_S),
        ('"often"', DEFAULT_INTERVAL_S),
        ("[5]", DEFAULT_INTERVAL_S),
    ],
)
def test_the_polling_interval_is_clamped(value_text: str, interval_s: float) -> None:
    device = device_answer(with_field(DEVICE_DOC, "interval", value_text))
    assert device.interval_s == interval_s


@pytest.mark.parametrize(
    ("value_text", "lifetime_s"),
    [("120", 120.0), ('"120"', 120.0), (HUGE, MAX_EXPIRES_IN_S), ("1e400", MAX_EXPIRES_IN_S)],
)
def test_the_device_code_lifetime_is_clamped(value_text: str, lifetime_s: float) -> None:
    device = device_answer(with_field(DEVICE_DOC, "expires_in", value_text))
    assert device.expires_at == NOW + lifetime_s


@pytest.mark.parametrize("value_text", ["0", "-1", f"-{HUGE}", "NaN", "true", '"soon"', "{}"])
def test_a_device_code_that_is_expired_on_arrival_is_refused(value_text: str) -> None:
    with pytest.raises(AuthResponseInvalid, match="expires_in") as refused:
        device_answer(with_field(DEVICE_DOC, "expires_in", value_text))
    assert f"{ISSUER}/device" in refused.value.what


def test_a_deeply_nested_device_answer_is_refused() -> None:
    with pytest.raises(AuthResponseInvalid, match="device authorization response"):
        device_answer(DEEP)


def test_a_deeply_nested_poll_error_is_the_token_endpoint_error() -> None:
    device = DeviceAuthorization("d", "U", f"{ISSUER}/a", None, expires_at=NOW + 60, interval_s=5)
    step = poll_device_token(AS, PUBLIC, device, resource=MCP, scopes=(), now=NOW)
    next(step)
    with pytest.raises(AuthError, match="HTTP 400"):
        step.send(raw(DEEP, status=400))


# -- dynamic client registration (RFC 7591 §3.2.1) ------------------------------------------

ME = ClientMetadata(redirect_uris=(REDIRECT,))
SECRET_DOC: dict[str, object] = {"client_id": "c", "client_secret": "s"}


def registered(body: bytes, status: int = 201) -> ClientRegistration:
    step = register_client(AS, ME, now=NOW)
    next(step)
    return finish(step, raw(body, status=status, url=f"{ISSUER}/register"))


@pytest.mark.parametrize(
    ("value_text", "expires_at"),
    [
        ("0", None),  # RFC 7591 §3.2.1: 0 is "does not expire"
        ("null", None),
        (str(int(NOW) + 60), NOW + 60),
        (HUGE, NOW + MAX_SECRET_LIFETIME_S),
        ("1e400", NOW + MAX_SECRET_LIFETIME_S),
    ],
)
def test_the_secret_expiry_is_read_and_clamped(value_text: str, expires_at: float | None) -> None:
    registration = registered(with_field(SECRET_DOC, "client_secret_expires_at", value_text))
    assert registration.client_secret_expires_at == expires_at


@pytest.mark.parametrize("value_text", ["-1", f"-{HUGE}", "NaN", "-Infinity", "true", '"x"'])
def test_a_secret_expiry_that_is_no_time_is_refused(value_text: str) -> None:
    with pytest.raises(AuthResponseInvalid, match="client_secret_expires_at") as refused:
        registered(with_field(SECRET_DOC, "client_secret_expires_at", value_text))
    assert f"{ISSUER}/register" in refused.value.what


def test_a_secret_expiry_without_a_secret_is_ignored() -> None:
    registration = registered(with_field({"client_id": "c"}, "client_secret_expires_at", "-1"))
    assert registration.client_secret_expires_at is None


def test_a_deeply_nested_registration_answer_is_refused() -> None:
    with pytest.raises(AuthResponseInvalid, match="registration response"):
        registered(DEEP)
    with pytest.raises(RegistrationFailed, match="refused"):
        registered(DEEP, status=400)


@pytest.mark.parametrize(
    "expires", [10**400, math.nan, -math.inf], ids=["400 digits", "nan", "-inf"]
)
def test_a_stored_registration_with_an_unusable_expiry_is_damaged(expires: object) -> None:
    doc = {**PUBLIC.to_json(), "client_secret": "s", "client_secret_expires_at": expires}
    with pytest.raises(AuthResponseInvalid, match="damaged"):
        ClientRegistration.from_json(doc)


# -- metadata (RFC 8414 §2): it has no numbers we read, only strings where numbers may be ----


def test_numbers_where_metadata_has_strings_are_refused_by_name() -> None:
    start = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/authorize"}
    doc = json.loads(with_field(start, "token_endpoint", HUGE))
    policy = UrlPolicy.for_server(MCP)
    with pytest.raises(AuthResponseInvalid, match="token_endpoint"):
        AuthServerMetadata.from_json(doc, issuer=ISSUER, policy=policy, source=ISSUER)


# -- any token response body ----------------------------------------------------------------

_JSON_NUMBER_TEXT = st.one_of(
    st.integers().map(str),
    st.integers(min_value=300, max_value=600).map(lambda n: "9" * n),
    st.integers(min_value=300, max_value=600).map(lambda n: "-" + "9" * n),
    st.floats().map(lambda f: json.dumps(f)),  # NaN, Infinity, -Infinity included
    st.sampled_from(["1e400", "-1e400", "2e-400", "-0", "0.0", "1E+2", "0.5", TOO_LONG]),
)
_VALUE_TEXT = st.one_of(
    _JSON_NUMBER_TEXT,
    _JSON_NUMBER_TEXT.map(lambda text: json.dumps(text)),  # the same, as a string
    st.sampled_from(["null", "true", "false", "[]", "{}", "[1]", '{"a":1}', "[" * 2000]),
    st.text(max_size=20).map(json.dumps),
)


@settings(max_examples=400)
@given(
    expires_in=st.none() | _VALUE_TEXT,
    extra=st.dictionaries(
        st.sampled_from(["refresh_token", "scope", "token_type", "access_token"]),
        _VALUE_TEXT,
        max_size=2,
    ),
)
def test_any_token_response_is_a_bounded_token_set_or_an_auth_error(
    expires_in: str | None, extra: dict[str, str]
) -> None:
    parts = ['"access_token":"a"', '"token_type":"Bearer"']
    parts += [f"{json.dumps(key)}:{value}" for key, value in extra.items()]
    if expires_in is not None:
        parts.append(f'"expires_in":{expires_in}')
    body = ("{" + ",".join(parts) + "}").encode()
    try:
        tokens = exchanged(raw(body))
    except AuthError:
        return
    absent = expires_in is None or expires_in.strip() == "null"
    if absent:
        assert tokens.expires_at is None
    else:
        assert tokens.expires_at is not None
        assert math.isfinite(tokens.expires_at)
        assert NOW <= tokens.expires_at <= NOW + MAX_TOKEN_LIFETIME_S


@settings(max_examples=200)
@given(st.binary(max_size=300) | _VALUE_TEXT.map(str.encode))
def test_any_token_response_bytes_end_in_tokens_or_an_auth_error(body: bytes) -> None:
    with contextlib.suppress(AuthError):
        exchanged(raw(body))
