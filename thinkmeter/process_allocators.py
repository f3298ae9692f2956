"""What this process's own allocators hold, for ``/metrics``: glibc malloc and Arrow's pool.

The serving process's resident memory is the sum of several allocators': the embedded
engine's jemalloc (``thinkmeter_clickhouse_allocator_resident_bytes``), glibc malloc
(Python's large objects, numpy arrays, the C libraries), Arrow's memory pool (span
batches, query results) and Python's own small-object arenas. When the process's memory
rises, these figures say whose it is: glibc's ``free_held`` growing while ``in_use`` stays
is fragmentation; ``in_use`` growing is objects kept.

Read on each scrape; each part is skipped where it does not exist (another libc, pyarrow not
loaded), and nothing here imports a library the process has not loaded itself.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from typing import Any


class _MallInfo2(ctypes.Structure):
    """glibc's ``struct mallinfo2`` (glibc 2.33 and later), every field a ``size_t``."""

    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]


@functools.cache
def glibc() -> ctypes.CDLL | None:
    """This process's glibc, opened once; None off glibc."""
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


@functools.cache
def _mallinfo2() -> Any:
    libc = glibc()
    mallinfo2 = getattr(libc, "mallinfo2", None)  # glibc 2.33 and later
    if mallinfo2 is not None:
        mallinfo2.restype = _MallInfo2
    return mallinfo2


def _glibc() -> dict[tuple[str, str], float]:
    mallinfo2 = _mallinfo2()
    if mallinfo2 is None:
        return {}
    info = mallinfo2()
    return {("glibc", "in_use"): float(info.uordblks),  # allocated from its arenas
            ("glibc", "free_held"): float(info.fordblks),  # freed into its arenas, not returned
            ("glibc", "mmapped"): float(info.hblkhd)}  # blocks above the mmap threshold, in their own mappings


def _arrow() -> dict[tuple[str, str], float]:
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is None:
        return {}
    pool = pyarrow.default_memory_pool()
    return {(f"arrow_{pool.backend_name}", "in_use"): float(pool.bytes_allocated())}


def allocator_bytes() -> dict[tuple[str, str], float]:
    """Bytes by (allocator, kind): glibc's in use, freed but held, and mmapped; Arrow's pool in use."""
    return {**_glibc(), **_arrow()}
