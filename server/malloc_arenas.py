"""One glibc malloc arena for the server process, where glibc would give each allocating thread its own.

SQLite's sorter (GROUP BY, DISTINCT) ran slower in a worker thread's arena than in the main one
(docs/performance.md). Reads run in worker threads (store/sqlite_reads.py), so the server keeps one
arena. Arenas exist to spare threads a shared lock; ours allocate mostly under the GIL, or in SQLite
between waits.
"""

from __future__ import annotations

import ctypes
import os

M_ARENA_MAX = -8  # glibc's malloc.h
ENVIRONMENT = "MALLOC_ARENA_MAX"


def use_one_arena() -> bool:
    """Limit this process (from now on) and the processes it starts to one arena, unless the environment
    already sets the limit; False where the C library is not glibc."""
    if ENVIRONMENT in os.environ:
        return False  # glibc read it when this process started; the operator's choice stands
    os.environ[ENVIRONMENT] = "1"  # for worker processes, which read it when they start
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    return bool(mallopt is not None and mallopt(M_ARENA_MAX, 1) == 1)
