"""UrlShowing: who shows the user the URL of a login that waits for them, an MCP client or
our own browser tab; and so whether the tab opens. Pure: events in, "open the tab now" out;
no asyncio, no browser, no clock. The flows (login.py, device_login.py) feed it the URL's
life and open the tab; the login coordinator feeds it the requests that speak for a client.

Why: a client that declared URL-mode elicitation is handed the URL (a 2026-07-28 client in a
sign-in round, a 2025-11-25 one as error -32042: engine/prompt_sign_in.py) and opens it
itself; a tab of ours would be a second one for the same sign-in. Every other way of asking
(a client without URL elicitation, which reads the URL in an error at best after
`--login-wait`; `mcp-bridge login`; the status page's Login button) wants the tab, once per
URL, as before.

Theory of operation. The login may start before anyone knows who will show its URL (a
request of a plain client starts it, one of a URL client joins it during discovery, or the
other way round), so nothing is decided when the login starts, only when its URL is ready:

    showing.client_waits()        # a request will hand the URL to its client once ready
    showing.url_ready(url)        # -> True: open the tab now
    showing.client_done(url)      # that request handed `url` to its client (None: it did not)
    showing.person_asks()         # -> True: open the tab now (a person asked for this login)
    showing.url_gone()            # the URL no longer waits (the login went on, or ended)
    showing.left_to_clients       # the URL waits and only clients show it, not our tab

- When the URL is ready, the tab opens unless a request is waiting to hand it to its client,
  or a client has already been handed this very URL.
- A waiting request that ends without handing the URL over (its recovery finished first, it
  was cancelled) leaves the decision to the others: once none waits and no client has the
  URL, the tab opens then (`client_done` answers True).
- A person asking (the Login button, `mcp-bridge login`) always gets the tab.
- A request whose client is not handed the URL as something to open (it reads it in an
  error) waits for the login while our tab shows the URL; when only clients show it
  (`left_to_clients`), waiting shows that request's user nothing, so it is answered with
  the URL at once (login_coordinator.py).
- The tab opens at most once per URL; `url_gone` starts the next URL (a second round of the
  same login, or the next login) from scratch. Waiting requests are not forgotten there:
  they belong to requests, which outlive a URL.
"""

from __future__ import annotations

from contextvars import ContextVar

__all__ = ["CLIENT_SHOWS_URL", "PASTE_OFFER", "UrlShowing"]

# True in a request whose session hands sign-in URLs to its client itself, as soon as one
# the client does not hold yet is ready (engine/prompt_sign_in.py): the login coordinator
# then only waits for the login. Among such requests is a round's retry, whose client
# holds the URL and whose user just went to the page: answering it at once because only
# clients show that URL would hand it the same URL again and again, the login never
# waited for. Here, in a light module, because the engine sets it for every session, and a
# daemon whose servers need no login must not load the OAuth stack (cryptography) for it.
CLIENT_SHOWS_URL: ContextVar[bool] = ContextVar("mcp_bridge_client_shows_url", default=False)

# What a terminal that takes the address the browser ends on, pasted, says after "open this
# URL in a browser": a terminal login's own (login.py) and one that joined the daemon's
# (cli/joined_login.py), which loads no more than this light module to say it.
PASTE_OFFER = " or paste the address the browser ends on here"


class UrlShowing:
    """Who shows the URL of one server's login (see the module docstring)."""

    def __init__(self) -> None:
        self._waiting = 0  # requests that will hand the URL to their client once it is ready
        self._url: str | None = None  # the URL waiting for the user, once ready
        self._handed = False  # a client was handed `_url`
        self._asked = False  # a person asked for this login: the tab opens whatever clients do
        self._opened = False  # our tab was opened (or counted as opened) for `_url`

    def client_waits(self) -> None:
        """A request will hand the URL to its client as soon as it is ready."""
        self._waiting += 1

    def client_done(self, handed: str | None) -> bool:
        """The request of `client_waits` is over, having handed `handed` to its client
        (None: it handed nothing). True: open the tab now, since nobody else will show it."""
        if self._waiting == 0:
            raise RuntimeError("client_done without client_waits")
        self._waiting -= 1
        if handed is not None and handed == self._url:
            self._handed = True
        return self._due()

    def person_asks(self) -> bool:
        """A person asked for this login. True: open the tab now (else it opens once the
        URL is ready, or it already has)."""
        self._asked = True
        return self._due()

    def url_ready(self, url: str) -> bool:
        """The login's URL waits for the user. True: open the tab now."""
        self._url, self._handed, self._opened = url, False, False
        return self._due()

    def url_gone(self) -> None:
        """The URL no longer waits for the user (the callback came, the login ended)."""
        self._url, self._handed, self._asked, self._opened = None, False, False, False

    @property
    def left_to_clients(self) -> bool:
        """A URL waits for the user and our tab does not show it: the clients handed it
        (or about to be) are the only ones that do."""
        return self._url is not None and not self._opened

    def _due(self) -> bool:
        if self._url is None or self._opened:
            return False
        if not self._asked and (self._waiting or self._handed):
            return False
        self._opened = True
        return True
