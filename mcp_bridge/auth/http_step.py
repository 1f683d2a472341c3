"""The seam between the OAuth decision steps and HTTP: the request/response vocabulary, the
`Step` type, and `run_step`, the one driver that performs a step's requests with aiohttp.

A step is a generator (the pattern of httpx's `Auth.auth_flow`): it yields an
`HttpRequest`, is sent the `HttpResponse`, and finally returns its result. Everything that
decides lives in the steps and is tested without sockets; this module only moves bytes.

The driver, not the steps, enforces transport hygiene on every exchange:
- each URL, and each redirect hop, passes the `UrlPolicy` before anything is sent;
- redirects are followed by hand, at most `MAX_REDIRECTS` hops, and only for GET (a POST
  carries a code, verifier or secret: it is never re-sent elsewhere; its 3xx goes back to
  the step, which treats it as an error);
- a body larger than `max_body_bytes` is refused rather than buffered;
- each request (all its hops and its body) has one total deadline;
- network failures and timeouts become `AuthServerUnavailable` naming the URL.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, TypeAlias, TypeVar
from urllib.parse import parse_qsl, urlencode, urljoin

from mcp_bridge.auth.errors import (
    AuthResponseInvalid,
    AuthServerUnavailable,
    sanitize_remote_text,
)

if TYPE_CHECKING:
    import aiohttp

    from mcp_bridge.auth.urlpolicy import UrlPolicy

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_TIMEOUT_S",
    "MAX_REDIRECTS",
    "HttpRequest",
    "HttpResponse",
    "SessionSource",
    "Step",
    "clamped",
    "json_number",
    "run_step",
    "shown_json",
    "stored_time",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_REDIRECTS = 5
DEFAULT_MAX_BODY_BYTES = 1024 * 1024  # metadata and token bodies are a few KiB
DEFAULT_TIMEOUT_S = 30.0
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """One request a step wants made. `body` is hidden from repr: token and registration
    forms carry codes, verifiers, refresh tokens and secrets."""

    method: Literal["GET", "POST"]
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = field(default=b"", repr=False)

    @classmethod
    def get(cls, url: str, headers: Mapping[str, str] | None = None) -> HttpRequest:
        all_headers = {"Accept": "application/json", **(headers or {})}
        return cls("GET", url, tuple(all_headers.items()))

    @classmethod
    def post_form(
        cls, url: str, form: Iterable[tuple[str, str]], headers: Mapping[str, str] | None = None
    ) -> HttpRequest:
        """An `application/x-www-form-urlencoded` POST (RFC 6749 §4.1.3, RFC 7009 §2.1)."""
        all_headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
            **(headers or {}),
        }
        return cls("POST", url, tuple(all_headers.items()), urlencode(list(form)).encode())

    @classmethod
    def post_json(
        cls, url: str, doc: object, headers: Mapping[str, str] | None = None
    ) -> HttpRequest:
        """A JSON POST (RFC 7591 §3.1 registration request)."""
        all_headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            **(headers or {}),
        }
        return cls("POST", url, tuple(all_headers.items()), json.dumps(doc).encode())

    def header(self, name: str) -> str | None:
        return _find_header(self.headers, name)

    def form(self) -> dict[str, str]:
        """The decoded form body (for tests and logs of field *names*)."""
        return dict(parse_qsl(self.body.decode(), keep_blank_values=True))


@dataclass(frozen=True, slots=True)
class HttpResponse:
    """What came back: the final status, headers and body, and the URL that answered
    (after any redirects). `body` is hidden from repr: token responses are secrets."""

    status: int
    body: bytes = field(default=b"", repr=False)
    headers: tuple[tuple[str, str], ...] = ()
    url: str = ""

    @classmethod
    def of_json(cls, doc: object, status: int = 200, url: str = "") -> HttpResponse:
        """A JSON response, mostly for tests that drive steps by hand."""
        return cls(status, json.dumps(doc).encode(), (("Content-Type", "application/json"),), url)

    def header(self, name: str) -> str | None:
        return _find_header(self.headers, name)

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def json_or_none(self) -> object | None:
        """The body as JSON, or None when it is not JSON (error bodies are often HTML)."""
        try:
            doc: object = json.loads(self.body)
        except _UNREADABLE_JSON:
            return None
        return doc

    def json(self, *, what: str) -> object:
        """The body as JSON, or AuthResponseInvalid naming `what` and the URL."""
        try:
            return json.loads(self.body)
        except _UNREADABLE_JSON as exc:
            raise AuthResponseInvalid(
                f"The {what} at {self.url or 'the server'} is not valid JSON",
                next_step="Tell the server's owner",
            ) from exc


# What json.loads raises on a body it cannot read: ValueError covers malformed JSON, bytes
# that are no Unicode, and an integer past CPython's int-string limit (4300 digits);
# RecursionError is arrays or objects nested past the recursion limit, which a 1 MiB body
# can easily be. All are the server's fault and must end as the step's named error.
_UNREADABLE_JSON = (ValueError, RecursionError)


def json_number(value: object) -> int | float | None:
    """`value` as a number, if a server sent one: a JSON number, or a string of ASCII digits
    (RFC 6749 §5.1 says `expires_in` is a number; strings are seen in the wild). None for
    anything else, including booleans (an int to Python) and NaN (Python's json reads it).

    The result may be a 400-digit int or inf (json reads `1e400` as inf): compare it, or
    pass it to `clamped`, but never to float() unchecked, which raises OverflowError."""
    if isinstance(value, str):
        digits = value.strip()
        # isdigit() is not enough: it is True for "²", which int() refuses.
        if not digits.isascii() or not digits.isdigit():
            return None
        digits = digits.lstrip("0") or "0"
        # int() refuses more than 4300 digits; anything near that long is "huge" anyway.
        return int(digits) if len(digits) <= 300 else math.inf
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def stored_time(value: object) -> float:
    """An epoch time read back from one of our vault records, where only finite numbers are
    written; ValueError for anything else. Past 2**53 (inf included) float() would round or
    overflow, so such a record is damaged too."""
    number = None if isinstance(value, str) else json_number(value)
    if number is None or not abs(number) <= 2**53:
        raise ValueError("not a time")
    return float(number)


def shown_json(value: object) -> str:
    """A JSON value from a server, short and safe to put in a message: text through
    sanitize_remote_text, a 400-digit number by its length, arrays and objects by their
    kind (repr() of one nested as deep as json.loads allows can hit the recursion limit)."""
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "an array"
    if isinstance(value, str):
        return f'"{sanitize_remote_text(value, max_chars=40)}"'
    shown = json.dumps(value)  # JSON's spelling: true, NaN, -Infinity
    if len(shown) > 40:
        return f"a number of {len(shown.lstrip('-'))} digits"
    return sanitize_remote_text(shown)


def clamped(number: int | float, low: float, high: float) -> float:
    """`number` brought into [low, high], compared before it is converted: float() of a
    400-digit int raises OverflowError, and inf must not reach arithmetic on clocks."""
    if not number > low:
        return low
    if not number < high:
        return high
    return float(number)


def _find_header(headers: tuple[tuple[str, str], ...], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers:
        if key.lower() == lowered:
            return value
    return None


# A procedure over HTTP: yields requests, is sent responses, returns T.
Step: TypeAlias = Generator[HttpRequest, HttpResponse, T]

# The session of whoever owns the auth machinery (OAuthCredentials), asked for only when a
# step runs: the owner may be built outside an event loop, where no aiohttp session can be
# made yet. Callers use it and never close it; the owner does.
SessionSource: TypeAlias = "Callable[[], aiohttp.ClientSession]"


async def run_step(
    step: Step[T],
    session: aiohttp.ClientSession,
    *,
    policy: UrlPolicy,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    follow_redirects: bool = True,
) -> T:
    """Run `step` to completion over `session` (from `mcp_bridge.http_client.client_session`)
    and return its result. Raises what the step raises, UrlRefused for a URL or redirect hop
    the policy refuses, AuthServerUnavailable for network failures and timeouts, and
    AuthResponseInvalid for an oversized body or a redirect loop. Always closes the step.
    `follow_redirects=False`: a redirect is handed to the step as the answer it is."""
    try:
        request = next(step)
        while True:
            response = await _send(
                request, session, policy, timeout_s, max_body_bytes, follow_redirects
            )
            request = step.send(response)
    except StopIteration as done:
        result: T = done.value
        return result
    finally:
        step.close()


async def _send(
    request: HttpRequest,
    session: aiohttp.ClientSession,
    policy: UrlPolicy,
    timeout_s: float,
    max_body_bytes: int,
    follow_redirects: bool,
) -> HttpResponse:
    import aiohttp  # deferred: importing the step vocabulary must not cost aiohttp

    from mcp_bridge.http_client import proxy_for

    url = policy.check_fetch(request.url, role="request")
    try:
        async with asyncio.timeout(timeout_s):
            for _hop in range(MAX_REDIRECTS + 1):
                proxy = proxy_for(url)
                async with session.request(
                    request.method,
                    url,
                    headers=dict(request.headers),
                    data=request.body if request.method == "POST" else None,
                    allow_redirects=False,
                    proxy=proxy.proxy,
                    proxy_auth=proxy.proxy_auth,
                ) as raw:
                    location = raw.headers.get("Location")
                    follow = follow_redirects and request.method == "GET"
                    if raw.status in _REDIRECT_STATUSES and location and follow:
                        next_url = urljoin(url, location)
                        log.debug(
                            "%s %s -> %d, redirect to %s", request.method, url, raw.status, next_url
                        )
                        url = policy.check_fetch(next_url, role="redirect target")
                        continue
                    body = await _read_capped(raw, url, max_body_bytes)
                    log.debug("%s %s -> %d", request.method, url, raw.status)
                    return HttpResponse(raw.status, body, tuple(raw.headers.items()), url)
    except TimeoutError as exc:
        raise AuthServerUnavailable(
            f"{request.method} {url} got no complete answer within {timeout_s:.0f} s",
            next_step="Check the network or try again later",
        ) from exc
    except aiohttp.ClientError as exc:
        raise AuthServerUnavailable(
            f"{request.method} {url} failed: {type(exc).__name__}: {exc}",
            next_step="Check the network or try again later",
        ) from exc
    raise AuthResponseInvalid(
        f"{request.url} redirected more than {MAX_REDIRECTS} times; stopped at {url}",
        next_step="Tell the server's owner",
    )


async def _read_capped(raw: aiohttp.ClientResponse, url: str, max_body_bytes: int) -> bytes:
    declared = raw.content_length
    if declared is not None and declared > max_body_bytes:
        raise _too_big(url, max_body_bytes)
    body = bytearray()
    async for chunk in raw.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_body_bytes:
            raise _too_big(url, max_body_bytes)
    return bytes(body)


def _too_big(url: str, max_body_bytes: int) -> AuthResponseInvalid:
    return AuthResponseInvalid(
        f"The response from {url} is larger than {max_body_bytes} bytes; not reading it",
        next_step="Tell the server's owner",
    )
