"""Where mcp-bridge keeps its files: platformdirs locations, or all under MCP_BRIDGE_HOME.

Hosts launch us with a thin environment (often no XDG_RUNTIME_DIR), so nothing here may
depend on session variables being present: every location is derivable from HOME alone.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "mcp-bridge"
HOME_ENV = "MCP_BRIDGE_HOME"


@dataclass(frozen=True, slots=True)
class BridgePaths:
    """The directories mcp-bridge uses. `ensure()` creates them owner-only (0700)."""

    config_dir: Path
    data_dir: Path
    state_dir: Path
    log_dir: Path
    runtime_dir: Path

    @property
    def vault_file(self) -> Path:
        return self.data_dir / "vault.bin"

    @property
    def vault_lock_file(self) -> Path:
        return self.state_dir / "vault.lock"

    def log_file(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

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
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / APP_NAME
    return state_dir / "run"
