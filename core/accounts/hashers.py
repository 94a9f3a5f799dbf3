"""Argon2id with OWASP's recommended parameters (m=19 MiB, t=2, p=1) instead of Django's (m=100 MiB,
t=2, p=8): each verify allocated 100 MiB, so a few logins at once pushed the core past 220 MB RSS and a
check took 110-300 ms on two cores (bench/core_login.py). OWASP's Password Storage Cheat Sheet lists
this set as equivalent in strength to its alternatives (m=46 MiB t=1, m=12 MiB t=3...).

Hashes keep their parameters in the string, so existing ones (Django's or authentik's) still verify;
a hash is re-made at login only when it is WEAKER than these parameters, never to lower its cost.
"""

from __future__ import annotations

from django.contrib.auth.hashers import Argon2PasswordHasher


class Argon2idHasher(Argon2PasswordHasher):
    time_cost = 2
    memory_cost = 19 * 1024  # KiB
    parallelism = 1

    def must_update(self, encoded: str) -> bool:
        current = self.decode(encoded)["params"]
        ours = self.params()
        return (current.type != ours.type or current.version != ours.version
                or current.time_cost < ours.time_cost or current.memory_cost < ours.memory_cost
                or current.hash_len < ours.hash_len)
