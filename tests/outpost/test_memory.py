"""outpost/memory.py: the glibc calls answer True on glibc (this project's images and CI), never raise elsewhere."""

import platform

from outpost import memory


def test_allocator_calls_run():
    on_glibc = platform.libc_ver()[0] == "glibc"
    assert memory.return_large_allocations() is on_glibc
    assert isinstance(memory.release_free_memory(), bool)
