"""Keeping a web worker's memory flat across large uploads.

An upload's blocks (1 MiB `bytes` each, a few in flight between the receiving, hashing and writing threads) are
allocated by one thread and freed by another. glibc serves allocations above its mmap threshold with mmap and
returns them on free, but it raises that threshold to the size of any such block once one is freed (up to 32 MiB),
after which the blocks come from per-thread heaps that fragment and are not given back: the granian worker's peak
RSS grew by 5-8 MiB with every 1 GiB upload (152, 159, 164 MiB over three). With the threshold fixed, the peak stayed
at 154-156 MiB over four (benchmarks/README.md, "The MLflow plugin").
"""

import ctypes
import ctypes.util

#: mallopt's parameter for the mmap threshold (malloc.h); setting it also turns off glibc's dynamic raising of it.
M_MMAP_THRESHOLD = -3
#: Blocks this large or larger are mmapped, and returned to the system as soon as they are freed.
MMAP_THRESHOLD = 512 * 1024


def return_large_blocks_to_the_system() -> bool:
    """Fix glibc's mmap threshold for this process; False where the C library is not glibc (nothing changes)."""
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
