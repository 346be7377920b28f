"""Keep the C heap's freed block buffers for reuse (glibc), instead of returning them to the kernel.

Moving a disk allocates and frees buffers of 4 MiB thousands of times (a read,
its compressed form, request bodies). By default glibc serves many of them from
fresh mappings or trims its heaps back between blocks; every reuse then pays a
page fault per 4 KiB page, which on virtual machines is dear: a worker backing
up 2.3 GiB took 178,000 page faults and 7.6 CPU-seconds, with the heap kept
30,000 and 6.7. Raising the mmap and trim thresholds above the largest buffer
keeps freed buffers in the heap, and one arena for all threads keeps them once
(not once per mover thread); ``release_free_memory`` hands them back when the
disk is moved. Where there is no glibc nothing changes.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
# Above the largest buffer a block needs (4 MiB, a chunk's header, a request body);
# glibc caps the mmap threshold at 32 MiB on 64-bit.
MMAP_THRESHOLD = 32 * 1024 * 1024
TRIM_THRESHOLD = 256 * 1024 * 1024
# One heap for the mover threads: a buffer freed by one is the next one's, so the process
# keeps the movers' largest moment once, not once per thread (a 4 GiB backup's peak RSS:
# 194 MiB with an arena per thread, 183 MiB with one; 171 MiB untuned).
ARENA_MAX = 1


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "malloc_trim"):
            return None  # musl and others
    except OSError:
        return None
    libc.mallopt.argtypes, libc.mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    libc.malloc_trim.argtypes, libc.malloc_trim.restype = [ctypes.c_size_t], ctypes.c_int
    return libc


@functools.cache
def keep_block_buffers() -> bool:
    """Keep freed buffers in this process's heap from now on; False where that can't be done."""
    libc = _libc()
    if libc is None:
        return False
    return all(libc.mallopt(option, value) for option, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX)))


def release_free_memory() -> None:
    """Give the heap's free memory back to the kernel: the buffers would otherwise wait idle."""
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
