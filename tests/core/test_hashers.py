"""core.accounts.hashers: OWASP argon2id parameters; old hashes verify; a hash is never re-made weaker."""

import argon2
from django.contrib.auth.hashers import Argon2PasswordHasher, check_password, get_hasher, make_password

from core.accounts.hashers import Argon2idHasher


def test_new_hashes_use_the_owasp_parameters():
    encoded = make_password("correct horse")
    assert encoded.startswith("argon2$argon2id$v=19$m=19456,t=2,p=1$")
    assert isinstance(get_hasher(), Argon2idHasher)
    assert check_password("correct horse", encoded)
    assert not check_password("wrong horse", encoded)


def test_django_default_hashes_still_verify_and_are_not_downgraded():
    django_default = Argon2PasswordHasher()
    encoded = django_default.encode("pw", django_default.salt())  # m=102400, t=2, p=8
    assert check_password("pw", encoded)
    assert not Argon2idHasher().must_update(encoded)


def test_weaker_hashes_are_upgraded_at_login():
    weak = "argon2" + argon2.PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("pw")
    assert check_password("pw", weak)
    assert Argon2idHasher().must_update(weak)
    assert not Argon2idHasher().must_update(make_password("pw"))
