"""`doctor`'s network steps: the proxy that applies, DNS, the TCP connection, and TLS as
`run` sees it, plus the request without a token whose answer the OAuth steps read.

The I/O is one small function per look (resolve, connect, one POST, one unverified TLS
handshake to see the certificate a server presents); what they saw becomes a Finding in the
pure functions next to them. The POST goes through the same aiohttp session `run` uses
(http_client.client_session: the OS trust store; the proxy of http_client.proxy_for), so a
TLS verdict here is the one `run` would meet.
"""

from __future__ import annotations

import asyncio
import datetime
import os
import socket
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from mcp_bridge.auth.sign_in import PROBE_BODY, PROBE_HEADERS
from mcp_bridge.auth.urlpolicy import NetworkZone, network_zone
from mcp_bridge.engine.checkup.findings import Finding
from mcp_bridge.http_client import proxy_for

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "NETWORK_TIMEOUT_S",
    "Endpoint",
    "PresentedCertificate",
    "Reach",
    "connect_finding",
    "dns_finding",
    "presented_certificate",
    "proxy_finding",
    "reach",
    "tls_finding",
]

NETWORK_TIMEOUT_S = 10.0
_DEFAULT_PORTS = {"http": 80, "https": 443}
# OpenSSL's verify results (X509_V_ERR_*) that mean "no trusted root for this chain".
_UNTRUSTED_CODES = frozenset({18, 19, 20, 21})
_EXPIRED = 10
_HOSTNAME_MISMATCH = 62
_HOSTS_PASS_NO_PROXY = (
    'a desktop client passes no proxy variables: set it in the "env" of the server\'s '
    "entry in the client's config too"
)


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where the first TCP connection goes: the server itself, or the proxy for it."""

    host: str
    port: int
    via_proxy: bool = False

    @classmethod
    def of(cls, url: str, *, via_proxy: bool = False) -> Endpoint:
        parts = urlsplit(url)
        port = parts.port or _DEFAULT_PORTS.get(parts.scheme.lower(), 443)
        return cls(parts.hostname or "", port, via_proxy)


def _without_user_info(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _proxy_variable(scheme: str, environ: Mapping[str, str]) -> str:
    """The variable the proxy came from (urllib reads the lowercase one first)."""
    for name in (f"{scheme}_proxy", f"{scheme.upper()}_PROXY"):
        if environ.get(name):
            return name
    return f"{scheme.upper()}_PROXY"


def proxy_finding(url: str, environ: Mapping[str, str]) -> tuple[Finding, Endpoint]:
    """Which proxy applies to `url`, as `run` chooses it (http_client.proxy_for:
    HTTP(S)_PROXY, NO_PROXY), and where the first connection therefore goes. Reads the
    process environment, as `run` does; `environ` names the variable."""
    import urllib.request

    scheme = urlsplit(url).scheme.lower()
    configured = urllib.request.getproxies().get(scheme)
    direct = Endpoint.of(url)
    if not configured:
        others = [name for name in ("ALL_PROXY", "all_proxy") if environ.get(name)]
        unused = (
            f"; {others[0]} is set, but only HTTP_PROXY and HTTPS_PROXY are read" if others else ""
        )
        return Finding.passed("proxy", f"none applies: connecting directly{unused}"), direct
    variable = _proxy_variable(scheme, environ)
    shown = _without_user_info(configured)
    proxy_scheme = urlsplit(configured).scheme.lower()
    if proxy_scheme != "http":
        return Finding.failed(
            "proxy",
            f"{variable}={shown} is a {proxy_scheme or 'scheme-less'} proxy; mcp-bridge "
            "speaks to proxies in plain http only (the tunnel to the server is TLS all the same)",
            f"Write it as http://host:port, or unset {variable}",
        ), direct
    proxy = proxy_for(url).proxy
    if proxy is None:
        return Finding.passed(
            "proxy", f"NO_PROXY exempts {direct.host} from {variable}: connecting directly"
        ), direct
    return Finding.passed(
        "proxy",
        f"{variable} applies: through {_without_user_info(str(proxy))}; " + _HOSTS_PASS_NO_PROXY,
    ), Endpoint.of(str(proxy), via_proxy=True)


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


async def dns_finding(endpoint: Endpoint) -> Finding:
    """Resolve the host the first connection goes to."""
    whose = "the proxy's host " if endpoint.via_proxy else ""
    if _is_address(endpoint.host):
        return Finding.passed("dns", f"{whose}{endpoint.host} is an address: nothing to resolve")
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT_S):
            infos = await loop.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
    except TimeoutError:
        why = f"no answer from the resolver within {NETWORK_TIMEOUT_S:.0f} s"
    except OSError as exc:  # socket.gaierror
        why = exc.strerror or str(exc)
    else:
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        return Finding.passed("dns", f"{whose}{endpoint.host} is {', '.join(addresses[:4])}")
    fix = "the proxy variable" if endpoint.via_proxy else "the host name in the URL"
    return Finding.failed(
        "dns",
        f"{whose}{endpoint.host} does not resolve: {why}",
        f"Check {fix}; if it is right, check the network's DNS (a VPN that must be on?)",
    )


async def connect_finding(endpoint: Endpoint) -> Finding:
    """Open (and close) a TCP connection to the endpoint."""
    what = f"{'the proxy ' if endpoint.via_proxy else ''}{endpoint.host}:{endpoint.port}"
    started = time.monotonic()
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT_S):
            _reader, writer = await asyncio.open_connection(endpoint.host, endpoint.port)
    except TimeoutError:
        return Finding.failed(
            "connect",
            f"{what} did not answer within {NETWORK_TIMEOUT_S:.0f} s",
            "A firewall or a VPN may be in the way; check the URL's host and port",
        )
    except ConnectionRefusedError:
        return Finding.failed(
            "connect",
            f"nothing listens on {what} (connection refused)",
            "Check that the server is running and that the URL's port is right"
            if not endpoint.via_proxy
            else "Check that the proxy runs, and the port in the proxy variable",
        )
    except OSError as exc:
        return Finding.failed(
            "connect",
            f"cannot connect to {what}: {exc.strerror or exc}",
            "Check the network, and the URL's host and port",
        )
    peer = writer.get_extra_info("peername")
    writer.close()
    await asyncio.gather(writer.wait_closed(), return_exceptions=True)
    elapsed_ms = (time.monotonic() - started) * 1000
    where = f" ({peer[0]})" if isinstance(peer, tuple) and peer[0] != endpoint.host else ""
    return Finding.passed("connect", f"connected to {what}{where} in {elapsed_ms:.0f} ms")


@dataclass(frozen=True, slots=True)
class Reach:
    """The answer to one POST without a token (the ping the login probes with), or why
    there was none. `certificate_error`: TLS verification refused the server."""

    status: int | None = None
    www_authenticate: str | None = None
    error: str = ""
    certificate_error: ssl.SSLCertVerificationError | None = None


async def reach(url: str, headers: Mapping[str, str], http: aiohttp.ClientSession) -> Reach:
    """POST a ping to `url` with `headers` (the profile's `--header`s, never a token of
    ours), not following redirects."""
    import aiohttp

    proxy = proxy_for(url)
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT_S * 3):
            async with http.post(
                url,
                data=PROBE_BODY,
                headers={**headers, **PROBE_HEADERS},
                allow_redirects=False,
                proxy=proxy.proxy,
                proxy_auth=proxy.proxy_auth,
            ) as response:
                return Reach(response.status, response.headers.get("WWW-Authenticate"))
    except aiohttp.ClientConnectorCertificateError as exc:
        return Reach(error=str(exc.certificate_error), certificate_error=_verify_error(exc))
    except TimeoutError:
        return Reach(error=f"no answer within {NETWORK_TIMEOUT_S * 3:.0f} s")
    except aiohttp.ClientError as exc:
        return Reach(error=f"{type(exc).__name__}: {exc}")


def _verify_error(exc: aiohttp.ClientConnectorCertificateError) -> ssl.SSLCertVerificationError:
    error = exc.certificate_error
    if isinstance(error, ssl.SSLCertVerificationError):
        return error
    return ssl.SSLCertVerificationError(str(error))


@dataclass(frozen=True, slots=True)
class PresentedCertificate:
    """What a server's certificate says, read without trusting it."""

    names: tuple[str, ...]  # subject alternative names, else the common name
    issuer: str
    not_after: datetime.datetime
    tls_version: str


async def presented_certificate(endpoint: Endpoint) -> PresentedCertificate | None:
    """The certificate the server presents, from a handshake that verifies nothing (only
    to show it; `reach` made the verdict). None when there is none to see."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(NETWORK_TIMEOUT_S):
            _reader, writer = await asyncio.open_connection(
                endpoint.host, endpoint.port, ssl=context, server_hostname=endpoint.host
            )
    except (OSError, TimeoutError):
        return None
    ssl_object = writer.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    version = (ssl_object.version() if ssl_object is not None else None) or "TLS"
    writer.close()
    await asyncio.gather(writer.wait_closed(), return_exceptions=True)
    return None if der is None else _read_certificate(der, version)


def _read_certificate(der: bytes, tls_version: str) -> PresentedCertificate | None:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    try:
        certificate = x509.load_der_x509_certificate(der)
    except ValueError:
        return None

    def common_name(name: x509.Name) -> str:
        found = name.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(found[0].value) if found else name.rfc4514_string()

    try:
        sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = tuple(str(n.value) for n in sans.value)
    except x509.ExtensionNotFound:
        names = (common_name(certificate.subject),)
    return PresentedCertificate(
        names=names,
        issuer=common_name(certificate.issuer),
        not_after=certificate.not_valid_after_utc,
        tls_version=tls_version,
    )


def tls_finding(
    url: str, answer: Reach, presented: PresentedCertificate | None, *, via_proxy: bool
) -> Finding:
    """The TLS verdict of `run`'s own HTTP stack on `url`, told with the certificate."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        where = (
            "a loopback host"
            if network_zone(parts.hostname or "") is NetworkZone.LOOPBACK
            else "--allow-http"
        )
        return Finding.not_applicable("tls", f"plain http ({where}): no TLS to check")
    seen = _described(presented)
    if answer.certificate_error is not None:
        detail, next_step = certificate_advice(answer.certificate_error, presented, parts.hostname)
        return Finding.failed("tls", f"{detail}{seen}", next_step)
    if answer.status is None:
        return Finding.failed(
            "tls",
            f"no HTTPS answer from {url}: {answer.error}",
            "Retry; if it keeps failing, check the URL and the network"
            + (" and the proxy" if via_proxy else ""),
        )
    return Finding.passed("tls", f"verified with the OS trust store{seen}")


def _described(presented: PresentedCertificate | None) -> str:
    if presented is None:
        return ""
    until = presented.not_after.date().isoformat()
    return (
        f" ({presented.tls_version}; certificate for {', '.join(presented.names[:3])}, "
        f"issued by {presented.issuer!r}, valid until {until})"
    )


def certificate_advice(
    error: ssl.SSLCertVerificationError, presented: PresentedCertificate | None, host: str | None
) -> tuple[str, str]:
    """What a verification failure means and what to do, by OpenSSL's verify code."""
    code = getattr(error, "verify_code", None)
    message = getattr(error, "verify_message", None) or str(error)
    if code in _UNTRUSTED_CODES:
        issuer = f" (here {presented.issuer!r})" if presented is not None else ""
        certificate_file = " (on Linux, SSL_CERT_FILE=/path/ca.pem works for one process)"
        return (
            f"the certificate is not trusted by the OS trust store: {message}. Likely a "
            "TLS-inspecting proxy or antivirus on this network, or a server with a private CA",
            f"Add the CA that issued it{issuer} to the OS trust store, which mcp-bridge uses "
            f"as your browser does{certificate_file if os.name == 'posix' else ''}; if you "
            "did not expect an inspecting proxy, tell your network's administrator",
        )
    if code == _EXPIRED:
        return (
            f"the server's certificate has expired: {message}",
            "Tell the server's owner; check this machine's clock as well",
        )
    if code == _HOSTNAME_MISMATCH:
        names = f" ({', '.join(presented.names[:3])})" if presented is not None else ""
        return (
            f"the certificate is for other names{names} than {host}: {message}",
            "Check the host name in the URL; a TLS-inspecting proxy can cause this too",
        )
    return (
        f"the certificate was refused: {message}",
        "Tell the server's owner, with this message",
    )
