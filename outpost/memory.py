"""glibc's allocator, told to give memory back: a Python daemon's RSS otherwise keeps what a peak took.

Hand-written through ctypes because no library wraps mallopt(3)/malloc_trim(3); both are no-ops (False)
where there is no glibc (musl, macOS)."""

from __future__ import annotations

import ctypes

MMAP_THRESHOLD = 128 * 1024  # glibc's initial M_MMAP_THRESHOLD
M_MMAP_THRESHOLD = -3  # mallopt parameter (malloc.h)


def return_large_allocations() -> bool:
    """Make glibc serve every allocation above 128 KiB with its own mmap, given back when freed.

    By default glibc raises that threshold to the size of each large block freed, up to 32 MiB: after the first
    argon2 hash (19 MiB of working memory) every hash's memory comes from a thread's heap arena and stays there,
    ~18 MB of RSS per thread that ever hashed (bench/core_login.py: idle 148 -> 130 MB); in the LDAP outpost the
    same happens to each page of users read from the core (a few MB of JSON). Setting the threshold fixes it
    (mallopt(3): an explicit value turns the dynamic adjustment off). False where there is no glibc."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False


def release_free_memory() -> bool:
    """Give the free pages inside the heap arenas back to the system (malloc_trim(3)), after a large
    structure was replaced (the LDAP outpost's directory, rebuilt on every change: its build's temporary
    objects leave whole free pages behind). Takes a few ms. False where there is no glibc."""
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False
