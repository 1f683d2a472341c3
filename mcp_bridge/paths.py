"""Where mcp-bridge keeps its files: platformdirs locations, or all under MCP_BRIDGE_HOME.

Hosts launch us with a thin environment (often no XDG_RUNTIME_DIR), so nothing here may
depend on session variables being present: every location is derivable from HOME alone.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import NamedTuple

APP_NAME = "mcp-bridge"
HOME_ENV = "MCP_BRIDGE_HOME"
# sun_path holds 108 bytes on Linux and 104 on macOS, the terminating NUL included.
MAX_SOCKET_PATH_BYTES = 100


class BridgePaths(NamedTuple):
    """The directories mcp-bridge uses. `ensure()` creates them owner-only (0700).
    (A NamedTuple, not a dataclass: `run`'s shim imports this module, and `dataclasses`
    costs it ~10 ms and ~1.4 MB at start.)"""

    config_dir: Path
    data_dir: Path
    state_dir: Path
    log_dir: Path
    runtime_dir: Path

    @property
    def servers_file(self) -> Path:
        """The named servers (`mcp-bridge add`): no secrets, readable and editable by hand."""
        return self.config_dir / "servers.toml"

    @property
    def vault_file(self) -> Path:
        return self.data_dir / "vault.bin"

    @property
    def vault_lock_file(self) -> Path:
        return self.state_dir / "vault.lock"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    @property
    def answer_cache_dir(self) -> Path:
        """The remote servers' last answers to `initialize` and `tools/list` (not secret)."""
        return self.state_dir / "answers"

    @property
    def daemon_lock_file(self) -> Path:
        """Held by the shim that starts the daemon, so shims started together start one."""
        return self.state_dir / "daemon.lock"

    @property
    def daemon_endpoint_file(self) -> Path:
        """Where a daemon on the loopback transport publishes its port and per-start
        secret (daemon/transport.py); 0600, and under Windows' per-user profile ACL."""
        return self.state_dir / "daemon.endpoint"

    def daemon_socket(self) -> Path:
        """The daemon's Unix socket: in the runtime directory, or, when that path is too
        long for a socket address, in a private directory of ours under the temp dir.
        Raises OSError when that directory exists but is not ours alone."""
        preferred = self.runtime_dir / "daemon.sock"
        if len(os.fsencode(preferred)) <= MAX_SOCKET_PATH_BYTES:
            return preferred
        import hashlib
        import tempfile

        digest = hashlib.sha256(os.fsencode(self.runtime_dir)).hexdigest()[:12]
        short = Path(tempfile.gettempdir()) / f"{APP_NAME}-{os.getuid()}-{digest}"
        private_directory(short)
        return short / "d.sock"

    def ensure(self) -> BridgePaths:
        for directory in (
            self.config_dir,
            self.data_dir,
            self.state_dir,
            self.log_dir,
            self.runtime_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        return self


def bridge_paths(environ: os._Environ[str] | dict[str, str] | None = None) -> BridgePaths:
    """The locations for this user; `MCP_BRIDGE_HOME=DIR` puts every one of them under DIR."""
    env = os.environ if environ is None else environ
    home = env.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().absolute()
        return BridgePaths(
            config_dir=root / "config",
            data_dir=root / "data",
            state_dir=root / "state",
            log_dir=root / "logs",
            runtime_dir=root / "run",
        )
    import platformdirs  # deferred: the shim must not pay for it when MCP_BRIDGE_HOME is set

    dirs = platformdirs.PlatformDirs(APP_NAME, appauthor=False)
    state = Path(dirs.user_state_dir)
    return BridgePaths(
        config_dir=Path(dirs.user_config_dir),
        data_dir=Path(dirs.user_data_dir),
        state_dir=state,
        log_dir=Path(dirs.user_log_dir),
        # platformdirs falls back to /tmp/runtime-<uid> without XDG_RUNTIME_DIR, and warns;
        # a directory under our own state dir is private and always there.
        runtime_dir=_runtime_dir(state),
    )


def _runtime_dir(state_dir: Path) -> Path:
    """$XDG_RUNTIME_DIR/mcp-bridge, or the same directory found without the variable
    (hosts leave it out, and a shim must find the daemon a full session started), or a
    directory under our own state dir, which is private and always there."""
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / APP_NAME
    if sys.platform.startswith("linux"):
        systemd_runtime = Path(f"/run/user/{os.getuid()}")
        if _is_ours(systemd_runtime):
            return systemd_runtime / APP_NAME
    return state_dir / "run"


def private_directory(path: Path) -> Path:
    """Create `path` as a 0700 directory, or check that the existing one is a directory
    of ours that nobody else can enter (OSError otherwise: someone may be squatting it)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(f"{path} is not a directory owned by this user")
    if info.st_mode & 0o077:
        path.chmod(0o700)
    return path


def _is_ours(path: Path) -> bool:
    try:
        info = path.stat()
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid()
