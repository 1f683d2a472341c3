#!/usr/bin/env python3
"""A real browser for `$BROWSER`: headless Chromium loads the URL and runs its scripts.

It follows redirects and runs the consent page's auto-submit script (the auth server
fixture's `consent_autosubmit` mode, or `&autosubmit=1`), so the login lands on the loopback
listener. `--dump-dom` with a virtual-time budget makes Chromium exit by itself once the
page has settled; it runs in its own process group with a throw-away profile, and the whole
group is killed afterwards (and on timeout), so no Chromium process outlives this script.

Usage: headless_chromium.py URL. Exit status: Chromium's (0 when it loaded the pages), 124
on timeout. If BROWSER_RECORD names a file, the final DOM is written to it as JSON.
Environment: CHROMIUM (default /usr/bin/chromium).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from typing import Any

TIMEOUT_S = 90.0
VIRTUAL_TIME_BUDGET_MS = 15_000

# Without the background-networking flags Chromium floods the closed test network with
# refused connections (seen on the CI machine); --no-sandbox because tests run as root.
BASE_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)
FLAGS = (*BASE_FLAGS, "--dump-dom", f"--virtual-time-budget={VIRTUAL_TIME_BUDGET_MS}")
QUIET_ENV = {"DBUS_SESSION_BUS_ADDRESS": "disabled:"}  # no session bus here
PROFILE_PREFIX = "mcp-bridge-chromium-"  # throw-away profiles; tests look for leftovers


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: headless_chromium.py URL", file=sys.stderr)
        return 2
    chromium = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    profile = tempfile.mkdtemp(prefix=PROFILE_PREFIX)
    env = {**os.environ, **QUIET_ENV}
    try:
        process = subprocess.Popen(
            [chromium, *FLAGS, f"--user-data-dir={profile}", argv[1]],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # its own process group, killed as a whole below
        )
        try:
            dom, _ = process.communicate(timeout=TIMEOUT_S)
            status = process.returncode
        except subprocess.TimeoutExpired:
            dom, status = b"", 124
        finally:
            kill_group(process)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    record = os.environ.get("BROWSER_RECORD")
    if record:
        with open(record, "w", encoding="utf-8") as out:
            json.dump({"status": status, "page": dom.decode("utf-8", "replace")}, out)
    return status


def kill_group(process: subprocess.Popen[Any]) -> None:
    """Chromium forks helpers (zygote, renderers, crashpad): end every one of them."""
    # ProcessLookupError: the group is gone, Chromium exited cleanly with all its helpers.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
