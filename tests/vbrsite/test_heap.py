"""The heap tuning the disk movers run under: 4 MiB buffers come from the heap and stay there."""

import subprocess
import sys

import pytest

from vbrsite import heap

# In a fresh interpreter: how much of the [heap] was resident while four block buffers were alive,
# how much of it is left once they are freed, and after release_free_memory (MiB).
BUFFERS = """
import sys
from vbrsite import heap
if sys.argv[1] == "keep":
    assert heap.keep_block_buffers()
def heap_resident():
    resident, in_heap = 0, False
    for line in open("/proc/self/smaps"):
        if line[0] in "0123456789abcdef" and " " in line and "-" in line.split()[0]:
            in_heap = line.rstrip().endswith("[heap]")
        elif in_heap and line.startswith("Rss:"):
            resident += int(line.split()[1]) * 1024
    return resident
before = heap_resident()
buffers = [bytearray(4 * 1024 * 1024) for _ in range(4)]
for buffer in buffers:
    buffer[::4096] = b"x" * 1024  # touch every page, as a read into it would
grown = heap_resident() - before
del buffers, buffer
kept = heap_resident() - before
heap.release_free_memory()
print(grown >> 20, kept >> 20, (heap_resident() - before) >> 20)
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
    assert grown >= 15 and kept >= 15  # four buffers of 4 MiB (15.9 MiB in whole MiB)
    assert released < 4  # and handed back to the kernel once the disk is moved
