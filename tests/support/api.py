"""The core's REST API (/api/v3/) with a token, for tests that run a real `ak server`: every call asserts
success and names the failure."""

from __future__ import annotations

import httpx


class Api:
    def __init__(self, base: str, token: str, timeout: float = 30.0):
        self.client = httpx.Client(base_url=base.rstrip("/") + "/api/v3", timeout=timeout,
                                   headers={"Authorization": f"Bearer {token}"})

    def __call__(self, method: str, path: str, expect: tuple[int, ...] = (200, 201, 204), **kwargs):
        response = self.client.request(method, path, **kwargs)
        assert response.status_code in expect, f"{method} {path}: {response.status_code} {response.text[:800]}"
        return response.json() if response.content else {}

    def first(self, path: str, **params) -> dict:
        results = self("GET", path, params=params)["results"]
        assert results, f"GET {path} {params}: nothing found"
        return results[0]

    def one(self, path: str, **params) -> dict:
        results = self("GET", path, params=params)["results"]
        assert len(results) == 1, f"GET {path} {params}: {len(results)} results, expected one"
        return results[0]

    def user(self, username: str, password: str, groups: list | tuple = ()) -> dict:
        """A user with a password; ``groups`` are group pks."""
        user = self("POST", "/core/users/", json={"username": username, "name": username.title(),
                                                  "email": f"{username}@example.test", "groups": list(groups)})
        self("POST", f"/core/users/{user['pk']}/set_password/", json={"password": password})
        return user

    def close(self) -> None:
        self.client.close()
