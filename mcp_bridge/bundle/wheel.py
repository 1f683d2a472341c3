"""This installed mcp-bridge as a wheel (`py3-none-any`: the package is pure Python), made
from the files Python imports it from and the installed distribution's metadata. No build
tools needed, and an editable install (a checkout) works as well as a wheel install.

The files are what pyproject.toml ships: the modules of every package (a directory with an
`__init__.py`) and the package data (`service_templates/*/*`); caches and stray files are
left out.
"""

from __future__ import annotations

import base64
import hashlib
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import NamedTuple

import mcp_bridge
from mcp_bridge.bundle.archive import zip_bytes
from mcp_bridge.errors import ConfigError

DISTRIBUTION = "mcp-bridge"
PACKAGE = "mcp_bridge"
# pyproject.toml's [tool.setuptools.package-data] for the package (a test keeps them equal).
PACKAGE_DATA = ("service_templates/*/*",)
_WHEEL_FILE = """\
Wheel-Version: 1.0
Generator: mcp-bridge bundle
Root-Is-Purelib: true
Tag: py3-none-any
"""
_ENTRY_POINTS = "[console_scripts]\nmcp-bridge = mcp_bridge.cli:main\n"


class Wheel(NamedTuple):
    filename: str
    data: bytes
    version: str
    requires_python: str
    license: str | None


def build_wheel() -> Wheel:
    """The wheel of the mcp-bridge this process runs. ConfigError when its installed
    metadata is missing or is another version than the code (a stale install)."""
    try:
        dist = metadata.distribution(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        dist = None
    version = mcp_bridge.__version__
    if dist is None or dist.version != version:
        found = f"version {dist.version}" if dist is not None else "none"
        raise ConfigError(
            f"The installed metadata of mcp-bridge ({found}) does not match its code "
            f"(version {version})",
            next_step="Install mcp-bridge again (`pipx install .`, or `pip install -e .` in a "
            "checkout), then build the bundle again",
        )
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    if not text:
        raise ConfigError(
            "The installed mcp-bridge has no package metadata",
            next_step="Install mcp-bridge again (`pipx install .`), then build the bundle again",
        )
    info = f"{PACKAGE}-{version}.dist-info"
    files = package_files(Path(mcp_bridge.__file__).parent)
    files[f"{info}/METADATA"] = text.encode("utf-8")
    files[f"{info}/WHEEL"] = _WHEEL_FILE.encode("ascii")
    files[f"{info}/entry_points.txt"] = (
        dist.read_text("entry_points.txt") or _ENTRY_POINTS
    ).encode("utf-8")
    files[f"{info}/RECORD"] = _record(files, f"{info}/RECORD")
    return Wheel(
        filename=f"{PACKAGE}-{version}-py3-none-any.whl",
        data=zip_bytes(files),
        version=version,
        requires_python=_field(dist, "Requires-Python") or ">=3.11",
        license=_field(dist, "License-Expression") or _field(dist, "License"),
    )


def package_files(root: Path) -> dict[str, bytes]:
    """The files of the package at `root`, by their name in a wheel (`mcp_bridge/...`)."""
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        relative = PurePosixPath(path.relative_to(root).as_posix())
        if path.is_file() and _shipped(root, relative):
            files[f"{PACKAGE}/{relative}"] = path.read_bytes()
    return files


def _shipped(root: Path, relative: PurePosixPath) -> bool:
    if "__pycache__" in relative.parts:
        return False
    if any(_matches(relative, pattern) for pattern in PACKAGE_DATA):
        return True
    if relative.suffix != ".py":
        return False
    # A module of a package: every directory on the way has an __init__.py.
    return all((root / parent / "__init__.py").is_file() for parent in relative.parents)


def _matches(relative: PurePosixPath, pattern: str) -> bool:
    """A glob matched against the whole relative path (`match` alone anchors only its end)."""
    return len(relative.parts) == len(PurePosixPath(pattern).parts) and relative.match(pattern)


def _field(dist: metadata.Distribution, name: str) -> str | None:
    values = dist.metadata.get_all(name)
    return str(values[0]) if values else None


def _record(files: dict[str, bytes], record_name: str) -> bytes:
    """RECORD: each file's urlsafe-base64 SHA-256 and size; the RECORD's own line is bare."""
    lines = []
    for name in sorted(files):
        digest = base64.urlsafe_b64encode(hashlib.sha256(files[name]).digest())
        lines.append(f"{name},sha256={digest.rstrip(b'=').decode('ascii')},{len(files[name])}")
    lines.append(f"{record_name},,")
    return ("\n".join(lines) + "\n").encode("utf-8")
