"""The daemon's status page: the `mcp-bridge status` table in the browser, with a Log in
and a Log out button per server, on an ephemeral port of 127.0.0.1.

Theory of operation

    page = StatusPage(registry, daemon.describe, on_request=...)
    url = await page.start()    # started on the first `page` command; the same URL after
    await page.aclose()         # with the daemon

- The page stops listening after `idle_close_s` (15 minutes) without a request and without
  a login it started still running: a page URL left in a browser's history or a terminal
  does not stay a way in for the daemon's whole life. The next `status --open` starts it
  again on a new port with a new secret (and CSRF token); the old URL leads nowhere.

- The URL is http://127.0.0.1:PORT/s/<secret>/, the secret made anew at each start; who may
  use the page, and why, is page_guard.py's docstring. Every answer, refusals included, has
  the headers of page_guard.SAFE_HEADERS and the page's Content-Security-Policy, and no CORS
  header. aiohttp's access log is off: it would write the secret into the daemon's log.
- GET / shows the report (engine/status_report.py) rendered by status_html.render_page.
  POST login starts a browser login for that server in the daemon's CredentialRegistry, the
  same login a request's 401 starts, and answers at once (the page shows it running, and
  how it ended on the next load); POST logout forgets the tokens as `mcp-bridge logout`
  does. Both answer 303 back to the page. A server is named by its key (its canonical
  resource), and only a server the report lists may be named.
- A named server's login uses its flags from servers.toml (scopes, client id, ...).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable

from aiohttp import web

from mcp_bridge.daemon import page_guard
from mcp_bridge.daemon.status_html import CONTENT_SECURITY_POLICY, PageView, render_page
from mcp_bridge.engine.profile import ServerProfile
from mcp_bridge.engine.registry import CredentialRegistry
from mcp_bridge.engine.status_report import Report, ServerRow, build_report, server_rows
from mcp_bridge.errors import BridgeError

__all__ = ["StatusPage"]

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 16 * 1024  # two hidden fields
IDLE_CLOSE_S = 15 * 60.0


class StatusPage:
    """See the module docstring. `describe_daemon`: the daemon's own status (pid,
    uptime_s, connections, servers, ...); `on_request`: told of every request (the daemon
    counts it as activity, not idle time)."""

    def __init__(
        self,
        registry: CredentialRegistry,
        describe_daemon: Callable[[], Report],
        *,
        on_request: Callable[[], None] = lambda: None,
        idle_close_s: float = IDLE_CLOSE_S,
    ) -> None:
        self._registry = registry
        self._describe_daemon = describe_daemon
        self._on_request = on_request
        self._idle_close_s = idle_close_s
        self._secret = ""
        self._csrf_token = ""
        self._runner: web.AppRunner | None = None
        self._closer: asyncio.Task[None] | None = None
        self._last_request = 0.0
        self._port = 0
        self._starting = asyncio.Lock()
        self._logins: dict[str, asyncio.Task[None]] = {}
        self._notes: dict[str, str] = {}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/s/{self._secret}/"

    @property
    def is_listening(self) -> bool:
        return self._runner is not None

    async def start(self) -> str:
        """Listen (once; later calls return the same URL while it listens) and return the
        page's URL."""
        async with self._starting:
            if self._runner is None:
                self._secret = secrets.token_urlsafe(32)
                self._csrf_token = secrets.token_urlsafe(32)
                app = web.Application(client_max_size=MAX_FORM_BYTES)
                app.on_response_prepare.append(_add_safe_headers)
                app.router.add_route("*", "/{tail:.*}", self._handle)
                runner = web.AppRunner(app, access_log=None, handle_signals=False)
                await runner.setup()
                await web.TCPSite(runner, "127.0.0.1", 0).start()
                self._runner, self._port = runner, runner.addresses[0][1]
                self._last_request = time.monotonic()
                self._closer = asyncio.create_task(self._close_when_idle(), name="page idle")
                log.info("status page listening on 127.0.0.1:%d", self._port)
        return self.url

    async def aclose(self) -> None:
        tasks = [*self._logins.values(), *([self._closer] if self._closer else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stop_listening()

    async def _close_when_idle(self) -> None:
        while True:
            quiet_s = time.monotonic() - self._last_request
            logging_in = any(not task.done() for task in self._logins.values())
            if quiet_s >= self._idle_close_s and not logging_in:
                break
            await asyncio.sleep(max(self._idle_close_s - quiet_s, self._idle_close_s / 10))
        async with self._starting:
            log.info("status page idle for %.0f s: no longer listening", self._idle_close_s)
            self._closer = None
            await self._stop_listening()

    async def _stop_listening(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    # -- requests ---------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self._on_request()
        self._last_request = time.monotonic()
        try:
            page_guard.check_host(request.headers.get("Host"), self._port)
            action = self._action(request.path)
            if action == "" and request.method in ("GET", "HEAD"):
                return await self._page()
            if action in ("login", "logout") and request.method == "POST":
                form = await request.post()
                token = form.get("csrf")
                page_guard.check_post(
                    request.headers,
                    port=self._port,
                    form_token=token if isinstance(token, str) else None,
                    csrf_token=self._csrf_token,
                )
                server = form.get("server")
                row = await self._row(server if isinstance(server, str) else "")
                await (self._log_in(row) if action == "login" else self._log_out(row))
                return web.HTTPSeeOther(location="./")
            if action in ("", "login", "logout"):
                raise page_guard.Refusal(405, "not a method this page answers")
            raise page_guard.Refusal(404, "not found")
        except page_guard.Refusal as refusal:
            return web.Response(status=refusal.status, text=f"{refusal.why}\n")

    def _action(self, path: str) -> str:
        """What `path` asks for under /s/<secret>/ ("" for the page itself). Refusal(404)
        for any other path, a wrong secret included (the same answer: nothing to learn)."""
        prefix, _, rest = path.partition("/s/")
        given, slash, action = rest.partition("/")
        if prefix or not slash or not page_guard.same_secret(given, self._secret):
            raise page_guard.Refusal(404, "not found")
        return action

    async def _report(self) -> Report:
        daemon = {"running": True, **self._describe_daemon()}
        try:
            return await build_report(self._registry.paths, self._registry.vault, daemon)
        except BridgeError as exc:
            raise page_guard.Refusal(503, f"mcp-bridge cannot read its vault: {exc}") from exc

    async def _page(self) -> web.Response:
        report = await self._report()
        rows = server_rows(report)
        sign_in_urls = {
            row.key: url
            for row in rows
            if row.key in self._logins and (url := self._registry.sign_in_url(row.key))
        }
        servers = report["servers"]
        view = PageView(
            rows=rows,
            daemon=report["daemon"],
            vault=report["vault"],
            csrf_token=self._csrf_token,
            servers_problem=servers if isinstance(servers, str) else None,
            notes=self._notes,
            sign_in_urls=sign_in_urls,
        )
        return web.Response(text=render_page(view), content_type="text/html")

    async def _row(self, key: str) -> ServerRow:
        for row in server_rows(await self._report()):
            if row.key == key:
                return row
        raise page_guard.Refusal(404, "no such server on this page (reload the page)")

    # -- the buttons ------------------------------------------------------------------

    async def _log_in(self, row: ServerRow) -> None:
        running = self._logins.get(row.key)
        if running is not None and not running.done():
            return  # the registry would join it anyway; one task is enough
        try:
            profile = self._profile(row)
        except BridgeError as exc:
            self._notes[row.key] = f"cannot sign in: {exc}"
            return
        self._notes[row.key] = "signing in: finish in the browser window that opened"
        task = asyncio.create_task(self._run_login(row.key, profile), name=f"page login {row.key}")
        self._logins[row.key] = task

    async def _run_login(self, key: str, profile: ServerProfile) -> None:
        try:
            result = await self._registry.login(profile)
        except BridgeError as exc:
            self._notes[key] = f"the sign-in failed: {exc}"
            return
        except Exception:
            # The edge of a background task: a bug is logged with its traceback, and the
            # page says where to look rather than showing nothing.
            log.exception("daemon bug in a login started from the status page")
            self._notes[key] = "the sign-in failed: an mcp-bridge bug, see daemon.log"
            return
        scopes = " ".join(result.tokens.scopes) or "the server's default scopes"
        self._notes[key] = f"signed in at {time.strftime('%H:%M:%S')} ({scopes})"

    async def _log_out(self, row: ServerRow) -> None:
        try:
            revoked = await self._registry.logout(self._profile(row))
        except BridgeError as exc:
            self._notes[row.key] = f"the log-out failed: {exc}"
            return
        at_server = ", revoked at the authorization server" if revoked else ""
        self._notes[row.key] = f"logged out at {time.strftime('%H:%M:%S')}{at_server}"

    def _profile(self, row: ServerRow) -> ServerProfile:
        """The server's profile: a named server's stored flags, or the defaults. ConfigError
        for stored flags that do not hold, or a server that takes a static token."""
        from mcp_bridge.errors import ConfigError
        from mcp_bridge.server_config import find_server

        if row.name is None:
            return ServerProfile.from_json({"url": row.url, "oauth": {}})
        entry = find_server(self._registry.paths.servers_file, row.name)
        headers = entry.get("header")
        if isinstance(headers, list) and any(
            spec.partition(":")[0].strip().lower() == "authorization" for spec in headers
        ):
            raise ConfigError(f"{row.name} is reached with a static Authorization header")
        doc = {"url": entry["url"], "oauth": entry, "allow_http": entry.get("allow_http") is True}
        return ServerProfile.from_json(doc)


async def _add_safe_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(page_guard.SAFE_HEADERS)
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
