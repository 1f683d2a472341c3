"""The daemon: one per user. It listens on a Unix socket (or loopback TCP: transport.py),
lets in only its own user, bridges each shim's client through the engine, and keeps every
stored login fresh.

Theory of operation

    async with contextlib.aclosing(DaemonServer(registry, idle_exit_s=...)) as daemon:
        await daemon.serve(transport.listen(paths))   # returns on `stop`, SIGTERM, idle exit

- One CredentialRegistry for every session: one provider per server, so one login and
  one refresh per server however many hosts and copies connect (engine/registry.py).
- At start, every login in the vault gets its background refresh, whether or not a client
  ever connects (a sliding refresh-token lifetime stays alive while the daemon runs).
- Who may connect: on a Unix socket, the peer's uid must be ours; on loopback TCP, the
  peer must prove it holds the secret the daemon published for this user alone, after
  the daemon proved it first (proof.py).
- A connection's first line is a hello (hello.py). A session hello carries the server
  profile; the daemon answers `ok`, then the connection carries JSON-RPC both ways until
  the shim closes it. A command hello (`status`, `stop`, `page`) gets one reply; `page`
  starts the status page (status_page.py) on first ask and answers with its URL.
  `join-login` (a terminal's `mcp-bridge login`) joins the login running for a server, if
  one does, and says its URL and its end (login_join.py).
- An auto-started daemon exits after `idle_exit_s` without any connection; one started
  by a service manager (`idle_exit_s=None`) runs until stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING

from mcp_bridge import __version__
from mcp_bridge.daemon import hello, login_join, proof, transport
from mcp_bridge.daemon.peer import peer_uid
from mcp_bridge.daemon.socket_channel import SocketChannel
from mcp_bridge.engine.profile import DEFAULT_MAX_MESSAGE_BYTES, ServerProfile
from mcp_bridge.engine.registry import CredentialRegistry, ServerState
from mcp_bridge.engine.session import open_session
from mcp_bridge.errors import BridgeError, ConfigError

if TYPE_CHECKING:
    from mcp_bridge.daemon.status_page import StatusPage

__all__ = ["HELLO_TIMEOUT_S", "DaemonServer"]

log = logging.getLogger(__name__)

HELLO_TIMEOUT_S = 10.0  # a connection that says nothing this long is closed
# The stream reader's buffer bound: the largest message any client may send, and a margin.
READ_LIMIT_BYTES = DEFAULT_MAX_MESSAGE_BYTES + 64 * 1024


class DaemonServer:
    """See the module docstring. The registry becomes the daemon's: `aclose()` ends every
    session and closes the registry."""

    def __init__(
        self,
        registry: CredentialRegistry,
        *,
        idle_exit_s: float | None,
    ) -> None:
        self._registry = registry
        self._idle_exit_s = idle_exit_s
        self._secret: str | None = None  # the loopback transport's; None: check the uid
        self._connections: set[asyncio.Task[None]] = set()
        self._sessions = 0
        self._stop = asyncio.Event()
        self._activity = asyncio.Event()
        self._started_at = time.time()
        self._background: set[asyncio.Task[None]] = set()
        self._page: StatusPage | None = None

    def stop(self) -> None:
        self._stop.set()

    async def serve(self, listening: transport.Listening) -> None:
        """Serve until stopped or idle; on return the listening socket is closed and what
        it published withdrawn."""
        resume = asyncio.create_task(self._resume_logins(), name="resume-logins")
        self._background.add(resume)
        resume.add_done_callback(self._background.discard)
        self._secret = listening.secret
        server = await asyncio.start_server(
            self._on_connection, sock=listening.sock, limit=READ_LIMIT_BYTES
        )
        where = listening.sock.getsockname()
        log.info("daemon %s (pid %d) listening on %s", __version__, os.getpid(), where)
        try:
            await self._until_stopped_or_idle()
        finally:
            server.close()
            transport.withdraw(listening)

    async def aclose(self) -> None:
        tasks = [*self._connections, *self._background]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._page is not None:
            await self._page.aclose()
        await self._registry.aclose()

    # -- lifetime ---------------------------------------------------------------------

    async def _until_stopped_or_idle(self) -> None:
        while not self._stop.is_set():
            self._activity.clear()
            idle = self._idle_exit_s is not None and not self._connections
            timeout_s = self._idle_exit_s if idle else None
            waiters = [
                asyncio.create_task(self._stop.wait()),
                asyncio.create_task(self._activity.wait()),
            ]
            try:
                done, _ = await asyncio.wait(
                    waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()
            if not done:
                log.info("no connection for %.0f s: exiting", timeout_s or 0)
                return

    async def _resume_logins(self) -> None:
        try:
            found = await self._registry.resume_stored_logins()
        except BridgeError as exc:
            log.warning("cannot resume the stored logins: %s", exc)
            return
        log.info("keeping %d stored login(s) fresh", found)

    # -- one connection ---------------------------------------------------------------

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        self._activity.set()
        try:
            await self._serve_connection(reader, writer)
        except asyncio.CancelledError:
            # The daemon is stopping. Ending normally, because on Python 3.11 asyncio's
            # stream server logs a cancelled connection task as an ERROR with a traceback.
            log.debug("a connection was cut short: the daemon is stopping")
        except Exception:
            # The edge of a connection: a bug must not take the daemon (and every other
            # client's session) down with it. Logged with its traceback to be fixed.
            log.exception("daemon bug while serving a connection")
        finally:
            self._connections.discard(task)
            self._activity.set()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if self._secret is None and not await self._is_own_user(writer):
            return
        try:
            async with asyncio.timeout(HELLO_TIMEOUT_S):
                expected = None
                if self._secret is not None:
                    expected = await _answer_challenge(reader, writer, self._secret)
                line = await reader.readuntil(b"\n")
            request = hello.parse_hello(line, proof=expected)
        except TimeoutError:
            await _say(writer, hello.error_reply("No hello within the time allowed"))
            return
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            return
        except hello.HelloError as exc:
            log.warning("refused a connection: %s", exc)
            await _say(writer, hello.error_reply(exc.what, exc.next_step))
            return
        if isinstance(request, hello.CommandHello):
            await _say(writer, await self._command(request.command))
            return
        if isinstance(request, hello.JoinLoginHello):
            await login_join.serve_join(
                self._registry, request.url, reader, lambda line: _say(writer, line)
            )
            return
        try:
            profile = ServerProfile.from_json(request.profile)
        except BridgeError as exc:
            refusal = hello.error_reply(
                exc.what, exc.next_step, is_config=isinstance(exc, ConfigError)
            )
            await _say(writer, refusal)
            return
        await _say(writer, hello.ok_reply(pid=os.getpid(), version=__version__))
        await self._serve_session(reader, writer, profile)

    async def _is_own_user(self, writer: asyncio.StreamWriter) -> bool:
        """A Unix socket's peer is this user (or the OS cannot tell: the 0700 directory
        still guards it); anyone else gets a refusal."""
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock) if sock is not None else None
        if uid is not None and uid != os.getuid():
            log.warning("refused a connection from uid %d", uid)
            await _say(writer, hello.error_reply("This daemon serves another user"))
            return False
        return True

    async def _serve_session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, profile: ServerProfile
    ) -> None:
        channel = SocketChannel(reader, writer, max_line_bytes=profile.max_message_bytes)
        self._sessions += 1
        log.info("session %d for %s opened", self._sessions, profile.url)
        async with open_session(channel, profile, self._registry) as session:
            await session.run()
        log.info("a session for %s closed", profile.url)

    async def _command(self, command: str) -> bytes:
        if command == "stop":
            log.info("asked to stop")
            self.stop()
            return hello.ok_reply(stopping=True)
        if command == "page":
            return await self._page_reply()
        return hello.ok_reply(**self.describe(asking=1))

    def describe(self, *, asking: int = 0) -> dict[str, object]:
        """The daemon's status (`daemon status`, and the status page): never a token.
        `asking`: connections not to count (the one asking)."""
        return {
            "pid": os.getpid(),
            "version": __version__,
            "uptime_s": round(time.time() - self._started_at, 1),
            "connections": len(self._connections) - asking,
            "sessions_served": self._sessions,
            "servers": [_server_status(state) for state in self._registry.servers],
        }

    async def _page_reply(self) -> bytes:
        """The status page's URL, the page started on the first ask."""
        from mcp_bridge.daemon.status_page import StatusPage

        if self._page is None:
            self._page = StatusPage(self._registry, self.describe, on_request=self._activity.set)
        try:
            url = await self._page.start()
        except OSError as exc:
            return hello.error_reply(f"The daemon cannot listen for its status page: {exc}")
        return hello.ok_reply(url=url, pid=os.getpid(), version=__version__)


def _server_status(state: ServerState) -> dict[str, object]:
    """What `status` shows of one server: never a token."""
    manager = state.oauth.manager if state.oauth is not None else None
    last_at = manager.last_refresh_at if manager is not None else None
    return {
        "resource": state.resource,
        "oauth": manager is not None,
        "tokens": manager is not None and manager.tokens is not None,
        "refreshes": manager.refresh_count if manager is not None else 0,
        "last_refresh_s_ago": None if last_at is None else round(time.time() - last_at),
        "last_failure": manager.last_failure if manager is not None else None,
        # A grant without a user renews the tokens (no refresh token needed): which one.
        "grant": state.settings.grant.value if state.settings.grant.is_machine else None,
    }


async def _answer_challenge(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, secret: str
) -> bytes:
    """Loopback TCP: prove this daemon holds `secret`; the proof the hello must then
    carry. Raises HelloError for a first line that is no challenge."""
    challenge = await reader.readuntil(b"\n")
    answer, expected = proof.answer_challenge(challenge, secret, os.urandom(proof.NONCE_BYTES))
    writer.writelines((answer, b"\n"))
    await writer.drain()
    return expected


async def _say(writer: asyncio.StreamWriter, line: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        writer.writelines((line, b"\n"))
        await writer.drain()
