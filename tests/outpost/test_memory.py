"""outpost/memory.py: the glibc call runs on glibc (this project's images and CI) and never raises elsewhere."""

from outpost import memory


def test_release_free_memory_runs():
    assert isinstance(memory.release_free_memory(), bool)
