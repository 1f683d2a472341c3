"""The loopback daemon's endpoint file (`daemon.endpoint` in the state directory): where
the daemon listens, the secret each side proves it holds, and the pid that must still run
for the file to mean anything. Standard library only: the shim reads it. transport.py
writes it when the daemon starts and removes it when it stops.

A file that is not one (edited by hand, torn, another version's shape) reads as no daemon:
a shim then starts one, which writes a good file. `process_is_running` answers "surely
gone" only when it is sure (Windows asks the kernel: `os.kill` would end the process).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import NamedTuple

__all__ = [
    "LOOPBACK_HOST",
    "LoopbackAddress",
    "encode_endpoint",
    "parse_endpoint",
    "process_is_running",
    "read_endpoint",
]

LOOPBACK_HOST = "127.0.0.1"


class LoopbackAddress(NamedTuple):
    """A daemon's loopback endpoint, as its endpoint file gives it."""

    port: int
    secret: str  # never shown: not in repr, str, logs or errors
    pid: int
    version: str

    def __str__(self) -> str:
        return f"{LOOPBACK_HOST}:{self.port}"

    def __repr__(self) -> str:
        return f"LoopbackAddress(port={self.port}, pid={self.pid}, version={self.version!r})"


def parse_endpoint(data: bytes) -> LoopbackAddress | None:
    """The endpoint file's content, or None when it is not one (edited by hand, torn, or
    written by another version in another shape): a shim then starts a daemon, which
    writes a good one."""
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict):
        return None
    port, secret, pid, version = (doc.get(key) for key in ("port", "secret", "pid", "version"))
    if not (
        isinstance(port, int)
        and not isinstance(port, bool)
        and 0 < port < 65536
        and isinstance(pid, int)
        and not isinstance(pid, bool)
        and pid > 0
        and isinstance(secret, str)
        and secret
        and isinstance(version, str)
    ):
        return None
    return LoopbackAddress(port, secret, pid, version)


def encode_endpoint(address: LoopbackAddress) -> bytes:
    return json.dumps(address._asdict(), separators=(",", ":")).encode()


def read_endpoint(path: Path) -> LoopbackAddress | None:
    try:
        data = path.read_bytes()
    except OSError:  # missing, mostly: no daemon has published one
        return None
    return parse_endpoint(data)


if sys.platform == "win32":
    # os.kill(pid, 0) would terminate the process on Windows: ask the kernel instead.
    _PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
    _ERROR_INVALID_PARAMETER = 87  # OpenProcess's answer for a pid no process has
    _STILL_ACTIVE = 259

    def process_is_running(pid: int) -> bool:
        """False only when the process is surely gone: any doubt answers True, and the
        connection attempt then decides."""
        import ctypes
        from ctypes import wintypes

        kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
        kernel32.OpenProcess.restype = wintypes.HANDLE
        kernel32.OpenProcess.argtypes = (wintypes.DWORD, wintypes.BOOL, wintypes.DWORD)
        kernel32.GetExitCodeProcess.argtypes = (wintypes.HANDLE, ctypes.POINTER(wintypes.DWORD))
        kernel32.CloseHandle.argtypes = (wintypes.HANDLE,)
        handle = kernel32.OpenProcess(_PROCESS_QUERY_LIMITED_INFORMATION, False, pid)
        if not handle:
            return ctypes.get_last_error() != _ERROR_INVALID_PARAMETER
        try:
            code = wintypes.DWORD()
            if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
                return True
            return code.value == _STILL_ACTIVE
        finally:
            kernel32.CloseHandle(handle)

else:

    def process_is_running(pid: int) -> bool:
        """True while `pid` exists (a zombie too: the connection attempt then decides)."""
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # another user's process: alive, and not our daemon's
        return True
