"""Who may use the status page: pure decisions over a request's headers, no I/O.

The page listens on 127.0.0.1, where every local program and every web page the user's
browser shows can reach it. What keeps them out:

- The secret: the page lives under /s/<secret>/, a per-start `secrets.token_urlsafe`; only
  whoever asked the daemon over its user-only socket knows it. A wrong or missing secret is
  answered 404, as any unknown path is: a scanner learns nothing. Compared in constant time.
- The Host header must be 127.0.0.1:PORT or localhost:PORT, else 403. A hostile site whose
  name the attacker re-points at 127.0.0.1 (DNS rebinding) makes the browser send its own
  name as Host; only then could its scripts read our answers as same-origin.
- A POST (the Login and Log out buttons) must come from the page itself: by its Origin and
  Sec-Fetch-Site headers, which browsers set on every form POST and no page can change
  (`check_post` has the rule), and with the per-start CSRF token the page put in its forms.
  A cross-site form, even one that somehow knows the secret, is refused with 403.
- No CORS header is ever sent, so no other origin's script may read an answer.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

__all__ = ["SAFE_HEADERS", "Refusal", "check_host", "check_post", "same_secret"]

# On every answer: never cached or kept in history stores, never sent on as a Referer (the
# URL holds the secret), no script or frame at all; the one inline style is allowed by
# its hash (status_html.STYLE_HASH, added where the page is served).
SAFE_HEADERS: Mapping[str, str] = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}
LOOPBACK_NAMES = ("127.0.0.1", "localhost")


class Refusal(Exception):
    """The request may not be served: `status` is the HTTP status, `why` says why."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status = status
        self.why = why


def page_origins(port: int) -> frozenset[str]:
    return frozenset(f"http://{name}:{port}" for name in LOOPBACK_NAMES)


def check_host(host: str | None, port: int) -> None:
    """Raise Refusal(403) unless `host` names this page: 127.0.0.1:PORT or localhost:PORT."""
    if host is None or f"http://{host.lower()}" not in page_origins(port):
        raise Refusal(403, "this page answers only to 127.0.0.1 and localhost")


def same_secret(given: str, expected: str) -> bool:
    """Constant-time comparison; `given` comes from a URL or a form and may be any text."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode())


def check_post(
    headers: Mapping[str, str], *, port: int, form_token: str | None, csrf_token: str
) -> None:
    """Raise Refusal(403) unless a POST comes from this page's own form (see the module
    docstring) and carries its CSRF token. `headers` must look names up case-insensitively.

    The page is served with `Referrer-Policy: no-referrer`, and for such a page a browser
    sends `Origin: null` on a form POST, even to the page's own origin (Fetch standard,
    "append a request Origin header"). So `null` passes only beside `Sec-Fetch-Site:
    same-origin`, which the browser sets itself and no page can forge; the page's real origin
    passes when Sec-Fetch-Site is absent (an older browser) or `same-origin`."""
    host = headers.get("Host")
    check_host(host, port)
    origin = headers.get("Origin")
    fetch_site = headers.get("Sec-Fetch-Site")
    own_origin = origin is not None and origin.lower() == f"http://{(host or '').lower()}"
    if not own_origin and not (origin == "null" and fetch_site is not None):
        raise Refusal(403, "the request does not come from this page (Origin)")
    if fetch_site is not None and fetch_site != "same-origin":
        raise Refusal(403, "the request does not come from this page (Sec-Fetch-Site)")
    if form_token is None or not same_secret(form_token, csrf_token):
        raise Refusal(403, "the form is not this page's (reload the page)")
