"""Open the authorization URL in the user's browser, without a shell.

Knows which URLs may reach a browser (MCP Security Best Practices: https only, no shell) and how to
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
- The URL rules themselves are `urlpolicy.check_browser_url`'s, applied again here because
  this is where the URL leaves our process. It refuses a backslash too: no URL character
  (RFC 3986 §2), browsers read it as `/` (WHATWG URL), and AppleScript's escape character.
- We run `webbrowser` in a short-lived child interpreter rather than in our process:
  1. its stdout/stderr are /dev/null, so neither it nor the browser it starts can write
     into stdout, which carries JSON-RPC in `--no-daemon` mode (the parent's fd 1 is
     inherited by every child otherwise; `GenericBrowser` does not redirect it); its stdin
     is /dev/null too by the time a browser starts (see 4);
  2. `$BROWSER` is read at each login (the stdlib reads it once per process and caches it);
  3. `GenericBrowser.open` waits for its command to exit, and a foreground browser may run
     for hours: we wait `launch_wait_s` at most (in a thread), then count it as opened.
  4. The URL reaches that child on its stdin, never in its argv: a process's argv is public
     to every local user (`ps`, /proc/<pid>/cmdline), and the URL carries `state`. The
     browser command that `webbrowser` finally runs (`xdg-open URL`, `$BROWSER URL`,
     `chromium URL`) does take the URL in its argv: that is how browsers are told what to
     open, so it cannot be avoided; only that last process has it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys

from mcp_bridge.auth.urlpolicy import check_browser_url

__all__ = ["DEFAULT_LAUNCH_WAIT_S", "open_in_browser"]

log = logging.getLogger(__name__)

DEFAULT_LAUNCH_WAIT_S = 10.0

# Reads the URL from stdin (not argv: see the module docstring, 4). The URL ends with a
# newline (check_browser_url refuses whitespace inside it), so a URL cut short, e.g. by our
# giving up on a launcher that never read it, is never opened: truncation can change the host.
# Stdin then becomes /dev/null, so the browser inherits no pipe of ours. Exit status 0 when
# webbrowser found and started a browser, 1 when it found none (or the URL was incomplete).
_LAUNCHER = """\
import os, sys, webbrowser
data = sys.stdin.buffer.read()
if not data.endswith(b"\\n") or data.count(b"\\n") != 1:
    sys.exit(1)
null = os.open(os.devnull, os.O_RDONLY)
os.dup2(null, 0)
os.close(null)
sys.exit(0 if webbrowser.open(data[:-1].decode("utf-8"), new=2) else 1)
"""


async def open_in_browser(
    url: str, *, allow_http: bool = False, launch_wait_s: float = DEFAULT_LAUNCH_WAIT_S
) -> bool:
    """Open `url` in the user's browser (honouring `$BROWSER`). True: a browser was started
    (or is still starting after `launch_wait_s`); False: none could be, so print the URL.
    Raises UrlRefused if the URL must not be opened at all (see `check_browser_url`)."""
    check_browser_url(url, allow_http=allow_http)
    return await asyncio.to_thread(_launch, url, launch_wait_s)


def _launch(url: str, launch_wait_s: float) -> bool:
    try:
        launcher = subprocess.Popen(
            # -I: isolated, so no PYTHON* variables and no cwd on sys.path (a webbrowser.py
            # lying in the current directory must not be what runs).
            # The URL is not in this argv: it goes on stdin (module docstring, 4).
            [sys.executable, "-I", "-c", _LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    except OSError as exc:
        log.warning("could not start the browser launcher: %s", exc)
        return False
    try:
        # communicate, not a bare write: it closes stdin once the URL is written (the child
        # reads to EOF), shrugs off a child that died unread, and keeps to the time limit.
        launcher.communicate((url + "\n").encode("utf-8"), timeout=launch_wait_s)
    except subprocess.TimeoutExpired:
        # Still running: a browser command that stays in the foreground. It was opened;
        # the child is left to run (subprocess reaps it on a later Popen). Our end of the
        # pipe is closed (if communicate had not yet) so a child still reading gets EOF and
        # exits on its incomplete URL rather than waiting forever with our descriptor open.
        assert launcher.stdin is not None
        with contextlib.suppress(OSError):
            launcher.stdin.close()
        log.debug(
            "browser command still running after %.0f s; treating it as opened", launch_wait_s
        )
        return True
    log.debug("browser launcher exited with status %d", launcher.returncode)
    return launcher.returncode == 0
