"""One browser login per server across processes. A desktop host runs several copies of a
server (two lanes, probes, other hosts: docs/desktop-hosts.md), each meeting the same 401:
the copy that takes the server's login lock signs in, and the others wait for its tokens to
land in the vault. (In the daemon every copy shares one provider; the lock matters for
`run --no-daemon`.) Knows the token manager and a file lock; not browsers.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

from mcp_bridge.auth.errors import AuthError, LoginRequired
from mcp_bridge.auth.token_manager import LoginResult, TokenManager
from mcp_bridge.auth.token_set import TokenSet
from mcp_bridge.auth.urlpolicy import canonical_resource
from mcp_bridge.errors import BridgeError
from mcp_bridge.paths import BridgePaths
from mcp_bridge.process_lock import ProcessFileLock

__all__ = ["FOLLOW_POLL_S", "as_auth_errors", "follow_other_login", "login_lock_path"]

log = logging.getLogger(__name__)

FOLLOW_POLL_S = 0.5  # how often a process waiting on another's login looks at the vault


def login_lock_path(paths: BridgePaths, mcp_url: str) -> Path:
    """The lock a process holds while it signs in to the server at `mcp_url`."""
    digest = hashlib.sha256(canonical_resource(mcp_url).encode()).hexdigest()[:16]
    return paths.state_dir / "logins" / f"{digest}.lock"


@contextlib.contextmanager
def as_auth_errors() -> Iterator[None]:
    """The credential provider's promise: only AuthError leaves it. A vault or config
    problem met on the way (a locked keyring, a bad --authorize-param) keeps its message
    and next step."""
    try:
        yield
    except AuthError:
        raise
    except BridgeError as exc:
        raise AuthError(exc.what, next_step=exc.next_step) from exc


async def follow_other_login(
    manager: TokenManager, lock: ProcessFileLock, before: TokenSet | None, *, timeout_s: float
) -> LoginResult | None:
    """Wait for another process's login to land in the vault: its result, or None once
    that process gave up (this one then holds `lock` and signs in itself). LoginRequired
    when it has not finished within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    log.info("another mcp-bridge process is signing in to %s; waiting", manager.mcp_url)
    while time.monotonic() < deadline:
        await asyncio.sleep(FOLLOW_POLL_S)
        with as_auth_errors():
            await manager.reload()
        tokens = manager.usable_tokens()
        context, client = manager.context, manager.client
        if tokens is not None and tokens is not before and context and client:
            return LoginResult(context, client, tokens)
        if lock.try_acquire():
            return None
    raise LoginRequired(
        f"Another mcp-bridge process is signing in to {manager.mcp_url} and has not finished",
        next_step="Finish that sign-in in the browser, then retry",
    )
