"""The process's stdio, claimed for JSON-RPC. Standard library only: the shim uses it.

stdout belongs to JSON-RPC alone. `claim_stdio()` makes that a property of the process
rather than a matter of care: the protocol gets private duplicates of fds 0 and 1, fd 1 is
pointed at stderr (a stray print, a C library or a child process such as a browser can then
never corrupt the wire) and fd 0 at /dev/null (a child cannot eat our input).
"""

from __future__ import annotations

import os
import sys
from typing import BinaryIO, NamedTuple

__all__ = ["Wire", "claim_stdio", "discard_rest_of_line"]


class Wire(NamedTuple):
    """The two byte streams the protocol uses."""

    reader: BinaryIO
    writer: BinaryIO


def claim_stdio() -> Wire:
    """Take fds 0 and 1 for the protocol; see the module docstring. Call once, early."""
    wire_in = os.fdopen(os.dup(0), "rb")
    wire_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    sys.stdout = sys.stderr
    return Wire(reader=wire_in, writer=wire_out)


def discard_rest_of_line(reader: BinaryIO) -> int:
    """Read and drop the rest of an over-long line, up to its newline; how much it was."""
    discarded = 0
    while True:
        chunk = reader.readline(1024 * 1024)
        discarded += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            return discarded
