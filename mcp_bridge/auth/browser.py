"""Open the authorization URL in the user's browser, without a shell.

Knows which URLs may reach a browser (spec §3.12, "Authorization-URL validation") and how to
start one; not OAuth. Returns False when no browser could be opened, so the caller prints
the URL for the user instead.

How a browser is started, and why no shell is involved (read in CPython 3.11-3.13,
Lib/webbrowser.py):
- `webbrowser` honours `$BROWSER` (a `os.pathsep`-separated list of commands). Each entry is
  registered as `GenericBrowser(cmdline)`, whose `open()` runs
  `subprocess.Popen([cmdline, url])` (or `shlex.split(cmdline)` with `%s` replaced by the URL
  when the entry contains `%s`): an argv list, never `shell=True`, so `;`, `$(...)` or
  backticks in the URL are bytes in one argument. The platform defaults are argv lists too
  (`xdg-open`, `gio open`, browser binaries) and `os.startfile` (ShellExecute, not cmd.exe)
  on Windows. macOS is the one place a shell appears: `os.popen("osascript", "w")` runs the
  fixed word `osascript`, and the URL reaches it on stdin inside the AppleScript string
  `open location "<url>"` with `"` escaped as %22, never on a command line.
- `check_openable` also refuses a backslash: it is no URL character (RFC 3986 §2), browsers
  read it as `/` (WHATWG URL), and it is AppleScript's escape character.
- We run `webbrowser` in a short-lived child interpreter rather than in our process:
  1. its stdin/stdout/stderr are /dev/null, so neither it nor the browser it starts can
     write into stdout, which carries JSON-RPC in `--no-daemon` mode (the parent's fd 1 is
     inherited by every child otherwise; `GenericBrowser` does not redirect it);
  2. `$BROWSER` is read at each login (the stdlib reads it once per process and caches it);
  3. `GenericBrowser.open` waits for its command to exit, and a foreground browser may run
     for hours: we wait `launch_wait_s` at most (in a thread), then count it as opened.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import subprocess
import sys
from urllib.parse import urlsplit

from mcp_bridge.auth.errors import UrlRefused

__all__ = ["DEFAULT_LAUNCH_WAIT_S", "check_openable", "open_in_browser"]

log = logging.getLogger(__name__)

DEFAULT_LAUNCH_WAIT_S = 10.0
# Far above any real authorization URL; below Windows' 32767-character command line.
MAX_URL_CHARS = 16_384
BACKSLASH = chr(92)
_NAMED_REFUSALS = ("javascript", "data", "file", "vbscript", "blob")

# Exit status 0 when webbrowser found and started a browser, 1 when it found none.
_LAUNCHER = "import sys, webbrowser; sys.exit(0 if webbrowser.open(sys.argv[1], new=2) else 1)"


def check_openable(url: str, *, allow_http: bool = False) -> str:
    """Return `url` if a browser may be sent there: https, or http to a loopback host (any
    http host with `allow_http`, the same opt-in as the URL policy's); no whitespace or
    control characters; no user:password@ part. Raises UrlRefused (an AuthError) otherwise,
    naming the reason (the URL came from a server, so it is treated as hostile).

    The authorization step already checks the URL with `UrlPolicy.check_browser`; this is
    the last check where the URL leaves our process, so it holds whatever the caller did."""
    if not isinstance(url, str) or not url:
        raise UrlRefused("The authorization URL is empty", next_step=_TELL_OWNER)
    if len(url) > MAX_URL_CHARS:
        raise UrlRefused(
            f"The authorization URL is {len(url)} characters long; refusing to open it",
            next_step=_TELL_OWNER,
        )
    if any(ch.isspace() or not ch.isprintable() or ch == BACKSLASH for ch in url):
        raise UrlRefused(
            "The authorization URL contains whitespace, a backslash or control characters; "
            "refusing to open it",
            next_step=_TELL_OWNER,
        )
    scheme = url.split(":", 1)[0].lower()
    if scheme in _NAMED_REFUSALS:
        raise UrlRefused(
            f"The authorization server sent a {scheme}: URL as its login page; refusing to open it",
            next_step=_TELL_OWNER,
        )
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError as exc:
        raise UrlRefused("The authorization URL cannot be parsed", next_step=_TELL_OWNER) from exc
    if parts.scheme.lower() not in ("https", "http") or not host:
        raise UrlRefused(
            f"The authorization URL has scheme {parts.scheme!r}; only https can be opened",
            next_step=_TELL_OWNER,
        )
    if parts.scheme.lower() == "http" and not (allow_http or _is_loopback(host)):
        raise UrlRefused(
            "The authorization URL is plain http to a non-loopback host; only https can be opened",
            next_step=_TELL_OWNER,
        )
    if parts.username is not None or parts.password is not None:
        # `https://trusted.example@evil.example/` reads as trusted and goes to evil.
        raise UrlRefused(
            "The authorization URL carries a user name before its host; refusing to open it",
            next_step=_TELL_OWNER,
        )
    return url


_TELL_OWNER = "Tell the MCP server's owner; mcp-bridge will not open such a URL"


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):  # RFC 6761 §6.3
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def open_in_browser(
    url: str, *, allow_http: bool = False, launch_wait_s: float = DEFAULT_LAUNCH_WAIT_S
) -> bool:
    """Open `url` in the user's browser (honouring `$BROWSER`). True: a browser was started
    (or is still starting after `launch_wait_s`); False: none could be, so print the URL.
    Raises UrlRefused if the URL must not be opened at all (see `check_openable`)."""
    check_openable(url, allow_http=allow_http)
    return await asyncio.to_thread(_launch, url, launch_wait_s)


def _launch(url: str, launch_wait_s: float) -> bool:
    try:
        launcher = subprocess.Popen(
            # -I: isolated, so no PYTHON* variables and no cwd on sys.path (a webbrowser.py
            # lying in the current directory must not be what runs).
            [sys.executable, "-I", "-c", _LAUNCHER, url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        log.warning("could not start the browser launcher: %s", exc)
        return False
    try:
        status = launcher.wait(timeout=launch_wait_s)
    except subprocess.TimeoutExpired:
        # Still running: a browser command that stays in the foreground. It was opened;
        # the child is left to run (subprocess reaps it on a later Popen).
        log.debug(
            "browser command still running after %.0f s; treating it as opened", launch_wait_s
        )
        return True
    log.debug("browser launcher exited with status %d", status)
    return status == 0
