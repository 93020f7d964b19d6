"""Process memory policy of long fits: keep freed memory for reuse instead of returning it.

A fit builds the same large temporaries (tangent and design arrays of a chunk of atoms) for
every chunk of every local problem.  glibc's allocator serves arrays above its mmap threshold
(128 kB, raised dynamically up to 32 MB) with fresh pages and returns them on free, so every
chunk pays page faults and the kernel's zeroing of the pages again: on a two-sweep Si fit a
quarter of the CPU time was system time.  :func:`keep_freed_memory` sets the threshold to its
maximum (32 MB on 64-bit) and stops trimming of the heap, so freed arrays are reused.  The cost
is that the process keeps its peak heap until it exits.  It is a no-op where the C library is
not glibc.  ``benchmarks/bench_fit.py`` measures the effect (system time and minor page faults).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging

__all__ = ["keep_freed_memory"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
_DONE = False


def keep_freed_memory(mmap_threshold: int = 32 * 2**20, trim_threshold: int = 2**31 - 1) -> bool:
    """Make glibc keep freed large arrays for reuse (once per process); returns whether it applied."""
    global _DONE
    if _DONE:
        return True
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, Windows, musl without mallopt)
        return False
    ok = bool(mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold))) and bool(mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)))
    _DONE = ok
    log.debug("mallopt: mmap threshold %d, trim threshold %d: %s", mmap_threshold, trim_threshold, ok)
    return ok
