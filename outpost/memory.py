"""glibc's allocator, told to give memory back: a Python daemon's RSS otherwise keeps what a peak took
(``ak server`` also fixes glibc's mmap threshold: core/server.py ``return_large_allocations``).

Hand-written through ctypes because no library wraps malloc_trim(3); a no-op (False) where there is no
glibc (musl, macOS)."""

from __future__ import annotations

import ctypes


def release_free_memory() -> bool:
    """Give the free pages inside the heap arenas back to the system (malloc_trim(3)), after a large
    structure was replaced (the LDAP outpost's directory, rebuilt on every change: its build's temporary
    objects leave whole free pages behind). Takes a few ms. False where there is no glibc."""
    try:
        return bool(ctypes.CDLL(None).malloc_trim(0))
    except (OSError, AttributeError):
        return False
