"""The server keeps one glibc malloc arena (server/malloc_arenas.py): threads allocate from it."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Threads that allocate through malloc (bytearrays past pymalloc's 512 bytes), then glibc's own account
# of its arenas (malloc_info: one <heap> element each).
PROGRAM = """
import ctypes, os, tempfile, threading
from server.malloc_arenas import use_one_arena
print(use_one_arena())
def work():
    kept = [bytearray(4096) for _ in range(2000)]
threads = [threading.Thread(target=work) for _ in range(4)]
for thread in threads: thread.start()
for thread in threads: thread.join()
libc = ctypes.CDLL(None)
libc.fdopen.restype = ctypes.c_void_p
with tempfile.TemporaryFile() as out:
    stream = libc.fdopen(os.dup(out.fileno()), b"w")
    libc.malloc_info(0, ctypes.c_void_p(stream))
    libc.fclose(ctypes.c_void_p(stream))
    out.seek(0)
    print(out.read().decode().count("<heap nr="))
"""

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")


def run(environment: dict[str, str]) -> tuple[str, int]:
    env = {key: value for key, value in os.environ.items() if key != "MALLOC_ARENA_MAX"}
    done = subprocess.run([sys.executable, "-c", PROGRAM], env={**env, **environment, "PYTHONPATH": str(ROOT)},
                          capture_output=True, text=True, check=True)
    limited, heaps = done.stdout.split()
    return limited, int(heaps)


def test_threads_share_the_one_arena() -> None:
    assert run({}) == ("True", 1)


def test_an_operators_setting_stands() -> None:
    limited, heaps = run({"MALLOC_ARENA_MAX": "8"})
    assert limited == "False"
    assert heaps > 1  # each thread took an arena of its own, as glibc does by default
