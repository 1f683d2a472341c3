"""Message-sized buffers go back to the OS once freed (issue 8, B).

glibc's malloc takes a block from mmap only above a threshold, and raises that threshold
(up to 32 MiB) to the size of each such block freed. So after the first large message the
next ones (a 20 MB body, its text, the parsed result, the client's line) come from the
heap, whose freed holes stay resident and rarely fit the next message: RSS grows by a
message or more, and stays there. A fixed threshold keeps every block of 1 MiB or more in
mmap: returned when freed, and grown by mremap rather than copied (an SSE buffer filling
up to 20 MB). Elsewhere (macOS, Windows, musl's stub) this changes nothing.
"""

from __future__ import annotations

import sys

M_MMAP_THRESHOLD = -3  # glibc <malloc.h>
LARGE_BLOCK_BYTES = 1 << 20

_tuned = False


def keep_large_blocks_out_of_the_heap() -> None:
    """Once per process; called when a remote endpoint starts, before any message."""
    global _tuned
    if _tuned or not sys.platform.startswith("linux"):
        return
    _tuned = True
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # no C library to ask, or one without mallopt
        return
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    mallopt(M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES)
