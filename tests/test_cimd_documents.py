"""The fixture AS's CIMD rules (mcp_bridge/demo/client_documents.py, CIMD draft-00):
what makes a client metadata document unusable, its cache, and the AS resolving real https
documents at /authorize (redirect URI matching, refusals, fetch counts). The bridge's side
is in test_cimd.py; these pin the peer those tests rely on, so a lenient AS cannot make
them pass."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from mcp_bridge.demo.client_documents import (
    DEFAULT_CACHE_S,
    MAX_DOCUMENT_BYTES,
    ClientDocument,
    DocumentRefused,
    DocumentResolver,
    Fetched,
    cache_lifetime,
    is_document_client_id,
)
from tests.fixtures.auth_server import AuthServer, AuthServerFactory
from tests.fixtures.tls_server import (
    DocumentServer,
    TlsFiles,
    client_document,
)

URL = "https://client.example/oauth/mcp-bridge.json"
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"  # RFC 7636 appendix B
HTTP_TIMEOUT_S = 30.0


# -- the document rules, no I/O -----------------------------------------------------------


def test_a_good_document_is_read() -> None:
    document = ClientDocument.from_json(
        client_document(URL, client_uri="https://x.example"), url=URL
    )
    assert document.client_id == URL
    assert document.redirect_uris == ("http://127.0.0.1/callback", "http://localhost/callback")
    assert document.token_endpoint_auth_method == "none"
    assert document.client_uri == "https://x.example"


@pytest.mark.parametrize(
    ("doc", "reason"),
    [
        (["not", "an", "object"], "not a JSON object"),
        (client_document(URL + "?other"), "is not its URL"),
        (client_document(URL.upper()), "is not its URL"),  # exactly, not case-folded
        (client_document(URL, client_name=""), "no client_name"),
        ({k: v for k, v in client_document(URL).items() if k != "redirect_uris"}, "redirect_uris"),
        (client_document(URL, redirect_uris=[]), "redirect_uris"),
        (client_document(URL, redirect_uris=["/callback"]), "redirect_uris"),
        (client_document(URL, client_secret="s"), "client_secret"),
        (client_document(URL, token_endpoint_auth_method="client_secret_post"), "shared secret"),
        (client_document(URL, token_endpoint_auth_method="client_secret_basic"), "shared secret"),
        (client_document(URL, token_endpoint_auth_method="private_key_jwt"), "not support"),
        (client_document(URL, grant_types="authorization_code"), "grant_types"),
    ],
)
def test_a_bad_document_is_refused_with_its_reason(doc: object, reason: str) -> None:
    with pytest.raises(DocumentRefused, match=reason):
        ClientDocument.from_json(doc, url=URL)


@pytest.mark.parametrize(
    ("client_id", "is_url"),
    [
        (URL, True),
        ("https://client.example", False),
        ("https://client.example/", False),
        ("http://client.example/client.json", False),
        ("3f2a9c", False),
    ],
)
def test_which_client_ids_name_a_document(client_id: str, is_url: bool) -> None:
    assert is_document_client_id(client_id) is is_url


@pytest.mark.parametrize(
    ("cache_control", "seconds"),
    [
        ("", DEFAULT_CACHE_S),
        ("max-age=60", 60.0),
        ("public, max-age=3600", 3600.0),
        ("no-store", 0.0),
        ("no-cache, max-age=60", 0.0),
    ],
)
def test_cache_lifetime_follows_cache_control(cache_control: str, seconds: float) -> None:
    headers = {"Cache-Control": cache_control} if cache_control else {}
    assert cache_lifetime(headers) == seconds


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_the_resolver_fetches_again_only_when_the_cache_expired() -> None:
    served: list[str] = []

    def fetch(url: str) -> Fetched:
        served.append(url)
        return Fetched(json.dumps(client_document(url)).encode(), cache_s=60.0)

    clock = Clock()
    resolver = DocumentResolver(fetch, clock=clock)
    assert (await resolver.resolve(URL)).client_id == URL
    clock.now += 59
    await resolver.resolve(URL)
    assert (resolver.fetches, len(served)) == (1, 1)
    clock.now += 2
    await resolver.resolve(URL)
    assert (resolver.fetches, len(served)) == (2, 2)


async def test_the_resolver_keeps_no_refused_document() -> None:
    bodies = [b"not json", json.dumps(client_document(URL)).encode()]
    resolver = DocumentResolver(lambda url: Fetched(bodies.pop(0), cache_s=60.0))
    with pytest.raises(DocumentRefused, match="not JSON"):
        await resolver.resolve(URL)
    assert (await resolver.resolve(URL)).client_id == URL  # fixed document: fetched again


# -- the AS resolving real https documents ------------------------------------------------


class NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def authorize(server: AuthServer, client_id: str, redirect_uri: str) -> tuple[int, str]:
    """GET /authorize as a browser would, without following the answer: (status, the
    Location header or the body)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "code_challenge": CHALLENGE,
            "code_challenge_method": "S256",
            "state": "s1",
            "scope": "mcp",
            "resource": server.mcp_url,
        }
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), NoRedirects())
    try:
        with opener.open(f"{server.issuer}/authorize?{query}", timeout=HTTP_TIMEOUT_S) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as answer:
        location = answer.headers.get("Location")
        return answer.code, location if location else answer.read().decode()


def test_the_metadata_advertises_cimd_only_in_cimd_mode(
    cimd_server: AuthServer, auth_server: AuthServerFactory
) -> None:
    def advertised(server: AuthServer) -> object:
        with urllib.request.urlopen(server.as_metadata_url, timeout=HTTP_TIMEOUT_S) as reply:
            return json.load(reply).get("client_id_metadata_document_supported")

    assert advertised(cimd_server) is True
    assert advertised(auth_server()) is None


def test_loopback_redirects_match_at_any_port_and_the_document_is_cached(
    cimd_server: AuthServer, documents: DocumentServer
) -> None:
    url = documents.url("/client.json")
    documents.put_json("/client.json", client_document(url), {"Cache-Control": "max-age=600"})
    for port in (50001, 50002):
        status, location = authorize(cimd_server, url, f"http://127.0.0.1:{port}/callback")
        assert status == 302, location
        assert location.startswith(f"http://127.0.0.1:{port}/callback?")
        assert "code" in parse_qs(urlsplit(location).query)
    stats = cimd_server.stats()
    assert (stats["cimd_fetches"], stats["authorizations"], stats["registrations"]) == (1, 2, 0)
    assert documents.hits == {"/client.json": 1}


def test_a_no_store_document_is_fetched_every_time(
    cimd_server: AuthServer, documents: DocumentServer
) -> None:
    url = documents.url("/client.json")
    documents.put_json("/client.json", client_document(url), {"Cache-Control": "no-store"})
    for _ in range(2):
        assert authorize(cimd_server, url, "http://127.0.0.1:50001/callback")[0] == 302
    assert cimd_server.stats()["cimd_fetches"] == 2
    assert documents.hits == {"/client.json": 2}


@pytest.mark.parametrize(
    "redirect_uri",
    [
        "http://127.0.0.1:50001/elsewhere",  # a path the document does not list
        "http://10.0.0.1:50001/callback",  # not loopback, not listed
        "https://app.example:8443/cb",  # listed at the default port only: exact match
    ],
)
def test_a_redirect_uri_the_document_does_not_list_is_refused_without_a_redirect(
    cimd_server: AuthServer, documents: DocumentServer, redirect_uri: str
) -> None:
    url = documents.url("/client.json")
    uris = ["http://127.0.0.1/callback", "https://app.example/cb"]
    documents.put_json("/client.json", client_document(url, redirect_uris=uris))
    status, body = authorize(cimd_server, url, redirect_uri)
    assert status == 400, body
    assert "redirect" in body.lower()
    assert cimd_server.stats()["authorizations"] == 0


def test_refused_documents_are_counted_with_their_reason(
    cimd_server: AuthServer, documents: DocumentServer
) -> None:
    cases = {
        "/mismatch.json": ({"client_id": "https://impostor.example/c.json"}, "is not its URL"),
        "/secret.json": ({"client_secret": "shared"}, "client_secret"),
        "/method.json": ({"token_endpoint_auth_method": "client_secret_basic"}, "shared secret"),
        "/huge.json": ({"client_name": "x" * MAX_DOCUMENT_BYTES}, "larger than"),
        "/absent.json": (None, "HTTP 404"),
    }
    for path, (changes, reason) in cases.items():
        url = documents.url(path)
        if changes is not None:
            documents.put_json(path, client_document(url, **changes))
        status, body = authorize(cimd_server, url, "http://127.0.0.1:50001/callback")
        assert status == 400, (path, body)
        assert "not found" in body
        stats = cimd_server.stats()
        assert stats["last"]["cimd"]["client_id"] == url
        assert reason in stats["last"]["cimd"]["refused"], path
    stats = cimd_server.stats()
    assert (stats["cimd_rejections"], stats["authorizations"]) == (len(cases), 0)


def test_a_document_that_redirects_is_not_followed(
    cimd_server: AuthServer, documents: DocumentServer
) -> None:
    url = documents.url("/moved.json")
    target = documents.put_json("/real.json", client_document(url))
    documents.put_json("/moved.json", {}, {"Location": target}, status=302)
    status, _ = authorize(cimd_server, url, "http://127.0.0.1:50001/callback")
    assert status == 400
    assert "HTTP 302" in cimd_server.stats()["last"]["cimd"]["refused"]
    assert "/real.json" not in documents.hits


def test_a_document_behind_an_untrusted_certificate_is_refused(
    auth_server: AuthServerFactory, documents: DocumentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)  # the AS inherits this environment
    server = auth_server(cimd=True)  # trusts only the system's CAs
    url = documents.put_json("/client.json", client_document(documents.url("/client.json")))
    assert authorize(server, url, "http://127.0.0.1:50001/callback")[0] == 400
    assert "could not be fetched" in server.stats()["last"]["cimd"]["refused"]
    assert "CERTIFICATE_VERIFY_FAILED" in server.stats()["last"]["cimd"]["refused"]


def test_ssl_cert_file_in_the_as_environment_is_trusted(
    auth_server: AuthServerFactory,
    documents: DocumentServer,
    tls_files: TlsFiles,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files.ca_cert))  # the AS inherits this
    server = auth_server(cimd=True)
    url = documents.put_json("/client.json", client_document(documents.url("/client.json")))
    assert authorize(server, url, "http://127.0.0.1:50001/callback")[0] == 302


def test_without_cimd_mode_a_url_client_id_is_unknown(
    auth_server: AuthServerFactory, documents: DocumentServer
) -> None:
    server = auth_server()
    url = documents.put_json("/client.json", client_document(documents.url("/client.json")))
    status, body = authorize(server, url, "http://127.0.0.1:50001/callback")
    assert (status, "not found" in body) == (400, True)
    assert documents.hits == {}
