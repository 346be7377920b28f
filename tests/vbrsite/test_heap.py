"""The heap tuning the disk movers run under: 4 MiB buffers come from the heap and stay there."""

import subprocess
import sys

import pytest

from vbrsite import heap

# In a fresh interpreter: how much the [heap] grew while four block buffers were alive,
# how much of it is left once they are freed, and after release_free_memory (MiB).
BUFFERS = """
import sys
from vbrsite import heap
if sys.argv[1] == "keep":
    assert heap.keep_block_buffers()
def heap_size():
    size = 0
    for line in open("/proc/self/maps"):
        if line.rstrip().endswith("[heap]"):
            start, end = (int(part, 16) for part in line.split()[0].split("-"))
            size += end - start
    return size
before = heap_size()
buffers = [bytearray(4 * 1024 * 1024) for _ in range(4)]
grown = heap_size() - before
del buffers
kept = heap_size() - before
heap.release_free_memory()
print(grown >> 20, kept >> 20, (heap_size() - before) >> 20)
"""


def _heap_growth(mode: str) -> tuple[int, int, int]:
    done = subprocess.run([sys.executable, "-c", BUFFERS, mode], capture_output=True, text=True, check=True)
    grown, kept, released = done.stdout.split()
    return int(grown), int(kept), int(released)


@pytest.mark.skipif(heap._libc() is None, reason="no glibc here: the tuning does nothing")
def test_block_buffers_come_from_the_heap_and_are_kept_for_the_next_block():
    # glibc's default maps each new 4 MiB buffer afresh (a page fault per page on every reuse).
    assert _heap_growth("default")[:2] == (0, 0)
    grown, kept, released = _heap_growth("keep")
    assert grown >= 16 and kept >= 16
    assert released < 4  # and handed back to the kernel once the disk is moved
