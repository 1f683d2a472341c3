"""The loopback redirect listener: where the browser lands after the user signs in.

Knows HTTP on 127.0.0.1 (aiohttp.web) and the shape of one authorization response; it does
not judge one. The caller arms it with the pending `state` and a *judge* (in practice the
sans-I/O `validate_callback` from the authorize step): the listener hands the judge the raw
query of the one callback whose `state` matches, and the judge's verdict decides what the
browser sees: a clean success page, or a failure page with the reason (HTML-escaped).

Theory of operation

    async with LoopbackListener() as listener:          # bound now: 127.0.0.1, ephemeral port
        uri = listener.redirect_uri                     # known before registration needs it
        ...register, build the authorization URL...
        waiting = listener.expect(state, judge)         # armed before the browser opens
        await open_in_browser(url)
        code = await waiting.result()                   # one callback, or AuthError on timeout

- Exactly one callback is accepted: the first whose `state` equals the armed one (RFC 6749
  §10.12; MCP Authorization Security Considerations, "Open Redirection": discard
  responses where state is missing or does not match). Any
  other request to the callback path gets a 400 page and is ignored; the listener keeps
  waiting. After the accepted one the listener closes.
- A redirect URL pasted into a terminal (SSH sessions, where the browser runs elsewhere)
  takes the same path through `submit_pasted`: same state filter, same judge; the terminal
  is the login's own, or one that joined the daemon's login (daemon/login_join.py).
- RFC 8252 §7.3 / §8.3: loopback IP literal, http, any port; which sockets that takes is
  loopback_sockets.py's job.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import logging
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, Self, TypeVar
from urllib.parse import parse_qsl, urlsplit

from aiohttp import web

from mcp_bridge.auth.errors import CallbackRejected
from mcp_bridge.auth.loopback_sockets import (
    DEFAULT_CALLBACK_TIMEOUT_S,
    CallbackHost,
    bind_loopback,
)
from mcp_bridge.errors import AuthError, BridgeError

__all__ = [
    "DEFAULT_CALLBACK_TIMEOUT_S",
    "CallbackHost",
    "CallbackQuery",
    "CallbackWait",
    "LoopbackListener",
]

log = logging.getLogger(__name__)

T = TypeVar("T")

# The raw authorization response: every query parameter, each present once (RFC 6749 §3.1:
# "parameters MUST NOT be included more than once"; a query that repeats one is refused).
CallbackQuery = Mapping[str, str]

CALLBACK_PATH = "/callback"
# A browser may keep the connection alive; closing must not wait long for it.
SHUTDOWN_TIMEOUT_S = 2.0


class CallbackWait(Generic[T]):
    """One armed expectation: the `state` we wait for and the judge of its callback.
    Made by `LoopbackListener.expect`; `result()` waits for the verdict."""

    def __init__(
        self,
        listener: LoopbackListener,
        state: str,
        judge: Callable[[CallbackQuery], T],
        timeout_s: float,
    ) -> None:
        self._listener = listener
        self._state = state
        self._judge = judge
        self._timeout_s = timeout_s
        self._verdict: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._taken = False  # a callback was accepted; its verdict may still be on its way
        self._accepted: tuple[T] | None = None  # the judge's value, boxed (T may be None)
        self._failure: BaseException | None = None

    @property
    def is_settled(self) -> bool:
        """A callback was accepted (or the wait ended): no other will be."""
        return self._taken or self._verdict.done()

    def matches(self, query: CallbackQuery) -> bool:
        """Is this the callback we wait for? Constant-time on `state` (it is a secret)."""
        received = query.get("state", "")
        return hmac.compare_digest(received.encode(), self._state.encode())

    def _take(self, query: CallbackQuery) -> BaseException | None:
        """Accept this query as the one callback and run the judge on it. Returns the
        judge's error (for the browser's page) or None. The verdict reaches `result()` only
        at `_deliver()`: the browser's page is written in between, so the waiter cannot wake
        and close the listener under it."""
        self._taken = True
        try:
            self._accepted = (self._judge(query),)
        except Exception as exc:  # not swallowed: the verdict belongs to result()'s caller
            self._failure = exc
        return self._failure

    def _deliver(self) -> None:
        """Hand the verdict of `_take()` to `result()`."""
        if self._verdict.done():
            return  # result() already gave up (timeout or cancellation)
        if self._accepted is not None:
            self._verdict.set_result(self._accepted[0])
        elif self._failure is not None:
            self._verdict.set_exception(self._failure)

    def submit_pasted(self, url: str) -> None:
        """Take a redirect URL the user pasted (the browser ran on another machine, or could
        not reach us). It must be our redirect URI with the pending `state`; it then goes
        through the same judge as a browser callback, and `result()` returns its verdict.
        Raises CallbackRejected (and keeps waiting) when the URL is not the one we wait for."""
        if self.is_settled:
            raise AuthError("This login is already over (a callback arrived, or it timed out)")
        query = self._listener.query_of_pasted(url)
        if not self.matches(query):
            raise CallbackRejected(
                "The pasted URL is from another login attempt (its state does not match)",
                next_step="Paste the address the browser reached after this sign-in",
            )
        self._take(query)
        self._deliver()

    async def result(self) -> T:
        """The judge's value for the one accepted callback; the judge's error if it refused
        it; AuthError if nothing arrived within the timeout (counted from this call). The
        listener is closed in every case."""
        try:
            async with asyncio.timeout(self._timeout_s):
                return await self._verdict
        except TimeoutError:
            raise AuthError(
                f"No sign-in arrived within {self._timeout_s:.0f} s",
                next_step=(
                    "Run `mcp-bridge login URL` again; if no browser opened, open the printed "
                    "URL yourself, or paste the address the browser ends on"
                ),
            ) from None
        finally:
            await self._listener.aclose()


class LoopbackListener:
    """An aiohttp listener on the loopback interface for one authorization response.

    Lifecycle: `async with` binds (or `start()`); `redirect_uri` is valid from then on;
    `expect()` arms it; the accepted callback (or a timeout) closes it; `aclose()` is
    idempotent. A `port` of 0 picks an ephemeral port.
    """

    def __init__(
        self,
        *,
        host: CallbackHost = CallbackHost.IPV4,
        port: int = 0,
        path: str = CALLBACK_PATH,
        timeout_s: float = DEFAULT_CALLBACK_TIMEOUT_S,
        server: str = "",
    ) -> None:
        """`server`: what the login is for (the MCP server's URL), named on the pages the
        browser is shown, so a person with several logins knows which one ended."""
        if not path.startswith("/"):
            raise ValueError(f"callback path must start with '/', got {path!r}")
        self.host = host
        self.requested_port = port
        self.path = path
        self.timeout_s = timeout_s
        self.server = server
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._waiting: CallbackWait[Any] | None = None
        self._closed = False

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("LoopbackListener.port is known after start() (or `async with`)")
        return self._port

    @property
    def redirect_uri(self) -> str:
        """`http://127.0.0.1:<port>/callback` (or `localhost`): register exactly this."""
        return f"http://{self.host.value}:{self.port}{self.path}"

    @property
    def is_closed(self) -> bool:
        return self._closed

    async def start(self) -> None:
        """Bind the socket(s) and start serving. Raises AuthError if the port is taken."""
        if self._runner is not None or self._closed:
            raise RuntimeError("A LoopbackListener is started once; make a new one per login")
        sockets = bind_loopback(self.host, self.requested_port)
        app = web.Application()
        # GET only: a HEAD (a link checker, a prefetch) must not use up the one callback.
        app.router.add_get(self.path, self._on_callback, allow_head=False)
        runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=SHUTDOWN_TIMEOUT_S
        )
        try:
            await runner.setup()
            for sock in sockets:
                await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            for sock in sockets:
                sock.close()
            raise
        self._runner = runner
        self._port = sockets[0].getsockname()[1]
        log.debug("loopback listener on %s", self.redirect_uri)

    def expect(
        self, state: str, judge: Callable[[CallbackQuery], T], *, timeout_s: float | None = None
    ) -> CallbackWait[T]:
        """Arm the listener for the callback carrying `state`; call it before the browser
        opens. `judge` gets the raw query and returns the result (or raises an error whose
        message the browser is shown). One expectation per listener."""
        if self._runner is None:
            raise RuntimeError("Start the LoopbackListener (`async with`) before expect()")
        if self._waiting is not None:
            raise RuntimeError("A LoopbackListener accepts one login; make a new one")
        if not state:
            raise ValueError("an empty state would match a callback without one")
        waiting = CallbackWait(self, state, judge, timeout_s or self.timeout_s)
        self._waiting = waiting
        return waiting

    def query_of_pasted(self, url: str) -> CallbackQuery:
        """The query of a pasted redirect URL, if it is addressed to our redirect URI."""
        text = url.strip()
        try:
            parts = urlsplit(text)
        except ValueError as exc:
            raise CallbackRejected(
                "The pasted text is not a URL", next_step="Paste the whole address"
            ) from exc
        without_query = parts._replace(query="", fragment="").geturl()
        if without_query != self.redirect_uri:
            raise CallbackRejected(
                f"The pasted URL is not addressed to {self.redirect_uri}",
                next_step="Paste the address the browser reached after signing in",
            )
        query = _single_valued(parse_qsl(parts.query, keep_blank_values=True))
        if query is None:
            raise CallbackRejected("The pasted URL repeats a parameter; it is not a valid callback")
        return query

    async def aclose(self) -> None:
        """Stop listening; idempotent. Any page being written is finished first."""
        self._closed = True
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
            log.debug("loopback listener on port %s closed", self._port)

    async def _on_callback(self, request: web.Request) -> web.StreamResponse:
        query = _single_valued(request.query.items())
        waiting = self._waiting
        if query is None or waiting is None or waiting.is_settled or not waiting.matches(query):
            # Not ours (a stale tab, a forged request, a second click): say so, keep waiting.
            # The query is not logged: it may carry a code.
            log.info("ignored a callback request that is not the pending login's")
            return _page(400, *_NOT_OURS)
        response = _verdict_page(waiting._take(query), self.server)
        try:
            # Write the page before the waiter can wake and close the server under it.
            await response.prepare(request)
            await response.write_eof()
        finally:
            waiting._deliver()
        return response


def _verdict_page(failure: BaseException | None, server: str) -> web.Response:
    to_server = f" to {server}" if server else ""
    if failure is None:
        return _page(
            200,
            f"Signed in{to_server}",
            "mcp-bridge received the authorization.",
            "You can close this tab.",
        )
    title = f"Sign-in{to_server} failed"
    if isinstance(failure, BridgeError):
        return _page(400, title, failure.what, failure.next_step)
    return _page(500, title, "mcp-bridge hit an internal error", "")


_NOT_OURS = (
    "Not the expected sign-in",
    "This sign-in response is not the one mcp-bridge is waiting for; it was ignored.",
    "If you started a login, use the newest browser tab it opened.",
)


def _page(status: int, title: str, what: str, next_step: str) -> web.Response:
    body = (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>mcp-bridge: {html.escape(title)}</title></head>"
        "<body style='font-family: sans-serif; margin: 3em'>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(what)}</p>"
        f"<p>{html.escape(next_step)}</p></body></html>"
    )
    return web.Response(
        status=status,
        text=body,
        content_type="text/html",
        headers={
            "Cache-Control": "no-store",
            # The URL carries the code: never send it on as a Referer (RFC 6749 §10.5).
            "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
            "X-Content-Type-Options": "nosniff",
            "Connection": "close",
        },
    )


def _single_valued(pairs: Iterable[tuple[str, str]]) -> dict[str, str] | None:
    """The pairs as a dict, or None if a name repeats (RFC 6749 §3.1)."""
    query: dict[str, str] = {}
    for name, value in pairs:
        if name in query:
            return None
        query[name] = value
    return query
