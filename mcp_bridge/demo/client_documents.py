"""The demo authorization server's side of Client ID Metadata Documents (CIMD draft-00, and
2026-07-28 client-registration.mdx): a client id that is an https URL names a JSON document
the AS fetches, checks and caches; the document says who the client is and where it may be
redirected.

`ClientDocument.from_json` is the one place a fetched document is judged (pure, no I/O);
`DocumentResolver` adds the fetch (stdlib urllib in a thread: no redirects, no proxies, a
size cap) and a cache that follows the response's Cache-Control. Knows nothing of the SDK's
client model: auth_provider.py turns a document into the client it hands the SDK.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Self
from urllib.parse import urlsplit

__all__ = [
    "MAX_DOCUMENT_BYTES",
    "ClientDocument",
    "DocumentRefused",
    "DocumentResolver",
    "Fetched",
    "is_document_client_id",
]

log = logging.getLogger(__name__)

# CIMD draft §4: the AS SHOULD cap the document (5 KB is the draft's example).
MAX_DOCUMENT_BYTES = 5 * 1024
FETCH_TIMEOUT_S = 15.0
DEFAULT_CACHE_S = 300.0  # no max-age given: keep it a while, as a heuristic cache would
# CIMD forbids shared secrets: the document is public, so a secret in it is no secret.
SHARED_SECRET_METHODS = frozenset(
    {"client_secret_basic", "client_secret_post", "client_secret_jwt"}
)
MAX_AGE = re.compile(r"(?:^|,)\s*max-age\s*=\s*(\d+)\s*(?:,|$)", re.IGNORECASE)


class DocumentRefused(Exception):
    """The document cannot identify this client; `reason` is shown in /stats."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"client metadata document {url}: {reason}")
        self.url = url
        self.reason = reason


def is_document_client_id(client_id: str) -> bool:
    """Whether a client id is a CIMD URL (https with a path) rather than an opaque id."""
    parts = urlsplit(client_id)
    return parts.scheme == "https" and bool(parts.hostname) and parts.path not in ("", "/")


@dataclass(frozen=True, slots=True)
class ClientDocument:
    """A validated client metadata document."""

    client_id: str  # equals the URL it was fetched from
    client_name: str
    redirect_uris: tuple[str, ...]
    grant_types: tuple[str, ...] = ("authorization_code", "refresh_token")
    token_endpoint_auth_method: str = "none"
    client_uri: str | None = None

    @classmethod
    def from_json(cls, doc: object, *, url: str) -> Self:
        """Judge a fetched document against CIMD's rules: its client_id is its URL, it has a
        client_name and redirect_uris, and it carries no shared secret."""
        if not isinstance(doc, dict):
            raise DocumentRefused(url, "it is not a JSON object")
        if doc.get("client_id") != url:
            # CIMD §3: the document's client_id MUST equal the URL it was fetched from,
            # exactly; anything else would let one document speak for another client.
            raise DocumentRefused(url, f"its client_id {doc.get('client_id')!r} is not its URL")
        name = doc.get("client_name")
        if not isinstance(name, str) or not name:
            raise DocumentRefused(url, "it has no client_name")
        uris = doc.get("redirect_uris")
        if (
            not isinstance(uris, list)
            or not uris
            or not all(isinstance(u, str) and _is_redirect_uri(u) for u in uris)
        ):
            raise DocumentRefused(url, "its redirect_uris is not a list of absolute URIs")
        if "client_secret" in doc or "client_secret_expires_at" in doc:
            raise DocumentRefused(url, "it carries a client_secret, which CIMD forbids")
        method = doc.get("token_endpoint_auth_method", "none")
        if not isinstance(method, str) or method in SHARED_SECRET_METHODS:
            raise DocumentRefused(url, f"its auth method {method!r} needs a shared secret")
        if method != "none":
            # private_key_jwt is allowed by CIMD, but this demo AS verifies no signatures.
            raise DocumentRefused(url, f"this server does not support auth method {method!r}")
        grants = doc.get("grant_types", ["authorization_code", "refresh_token"])
        if not isinstance(grants, list) or not all(isinstance(g, str) for g in grants):
            raise DocumentRefused(url, "its grant_types is not a list of strings")
        client_uri = doc.get("client_uri")
        return cls(
            client_id=url,
            client_name=name,
            redirect_uris=tuple(uris),
            grant_types=tuple(grants),
            token_endpoint_auth_method=method,
            client_uri=client_uri if isinstance(client_uri, str) else None,
        )


def _is_redirect_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    return bool(parts.scheme) and bool(parts.netloc) and not parts.fragment


@dataclass(frozen=True, slots=True)
class Fetched:
    """One fetch's outcome: the body and how long it may be cached."""

    body: bytes
    cache_s: float


def cache_lifetime(headers: Mapping[str, str]) -> float:
    """Seconds a response may be reused, from its Cache-Control (RFC 9111 §5.2.2)."""
    control = headers.get("Cache-Control", "")
    directives = {part.strip().split("=")[0].lower() for part in control.split(",")}
    if directives & {"no-store", "no-cache"}:
        return 0.0
    if match := MAX_AGE.search(control):
        return float(match.group(1))
    return DEFAULT_CACHE_S


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    # A document that moved is not the document its client id names: refuse, don't follow.
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def fetch_document(url: str, ca_file: str | None) -> Fetched:
    """GET `url` (blocking): at most MAX_DOCUMENT_BYTES, no redirects, no proxy."""
    context = ssl.create_default_context(cafile=ca_file)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),  # the documents here are on 127.0.0.1
        urllib.request.HTTPSHandler(context=context),
        _NoRedirects(),
    )
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    try:
        with opener.open(request, timeout=FETCH_TIMEOUT_S) as response:
            body: bytes = response.read(MAX_DOCUMENT_BYTES + 1)
            # response.headers matches names case-insensitively; a plain dict would not.
            headers = {"Cache-Control": response.headers.get("Cache-Control", "")}
    except urllib.error.HTTPError as exc:
        raise DocumentRefused(url, f"fetching it answered HTTP {exc.code}") from exc
    except (OSError, ValueError) as exc:
        raise DocumentRefused(url, f"it could not be fetched ({exc})") from exc
    if len(body) > MAX_DOCUMENT_BYTES:
        raise DocumentRefused(url, f"it is larger than {MAX_DOCUMENT_BYTES} bytes")
    return Fetched(body, cache_lifetime(headers))


Fetcher = Callable[[str], Fetched]


@dataclass
class DocumentResolver:
    """Client id URL -> ClientDocument, fetched on first use and cached per Cache-Control.
    `fetches` counts network fetches (what /stats calls `cimd_fetches`)."""

    fetch: Fetcher
    clock: Callable[[], float] = time.monotonic
    fetches: int = 0
    _cache: dict[str, tuple[ClientDocument, float]] = field(default_factory=dict)

    @classmethod
    def over_https(cls, ca_file: str | None) -> DocumentResolver:
        return cls(lambda url: fetch_document(url, ca_file))

    async def resolve(self, url: str) -> ClientDocument:
        """The document `url` names; DocumentRefused if it cannot be had or is invalid."""
        cached = self._cache.get(url)
        if cached is not None and cached[1] > self.clock():
            return cached[0]
        self.fetches += 1
        fetched = await asyncio.to_thread(self.fetch, url)
        try:
            parsed = json.loads(fetched.body)
        except ValueError as exc:
            raise DocumentRefused(url, "it is not JSON") from exc
        document = ClientDocument.from_json(parsed, url=url)
        if fetched.cache_s > 0:
            self._cache[url] = (document, self.clock() + fetched.cache_s)
        log.info("client metadata document %s fetched (cache %.0f s)", url, fetched.cache_s)
        return document

    def forget(self) -> None:
        self._cache.clear()
        self.fetches = 0
