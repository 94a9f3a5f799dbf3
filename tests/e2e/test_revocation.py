"""Revocation reaches a STANDALONE outpost (issue 3, THREATS 12): logout at the core, deactivating the user,
removing the user from the bound group, deleting the AuthenticatedSession through the API. After each, the
old cookie is refused through real nginx (auth_request -> ``ak outpost proxy``).

Measured: the time from the return of the call that revokes (API call / the logout flow's answer) to the
first refused request, polled every 20 ms for at most 5 s. The only assertion is "refused within the bounded
poll"; the numbers (the issue's goal is 1 s) are printed at the end of the run and written to
test-artifacts/e2e/revocation.json. Memory and Redis session stores; one core + one outpost per store.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support.browser import Browser
from tests.e2e.support.live import POLL_MAX, Site, add_site, refusal_delay, sign_in
from tests.e2e.support.stack import STORES, Stack

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACT = ROOT / "test-artifacts" / "e2e" / "revocation.json"
GROUP = "revocable"
PASSWORD = "Correct-Horse-revoke-3!"  # noqa: S105 - a test password
ROUNDS = 3  # measurements per kind and store
GOAL = 1.0  # issue 3: "within 1 s" -- reported, not asserted (no timing thresholds in tests)
KINDS = ("core_logout", "deactivate", "remove_from_group", "delete_session")
MEASURED = pytest.StashKey[dict]()


@pytest.fixture(scope="module", params=STORES)
def stack(request, stack_factory) -> Iterator[Stack]:
    stack = stack_factory(store=request.param, standalone=True)
    yield stack
    stack.stop()  # before the next store's stack starts (the factory's own stop is then a no-op)


@pytest.fixture(scope="module")
def users(stack: Stack) -> dict[tuple[str, int], dict]:
    """One user per kind and round, created BEFORE the application: the outpost's snapshot (which decides
    every request) lists a new user only after the next refresh, so a login right after creating the user
    could meet a 403 that has nothing to do with revocation."""
    return {(kind, n): stack.user(f"{kind}-{n}", PASSWORD, [GROUP]) for kind in KINDS for n in range(ROUNDS)}


@pytest.fixture(scope="module")
def site(stack: Stack, users, proxy_factory, upstream) -> Iterator[Site]:
    site = add_site(stack, proxy_factory, upstream, "nginx", f"revoke-{stack.store}", group=GROUP)
    yield site
    site.proxy.stop()


@pytest.fixture(scope="module")
def measured(request) -> dict:
    """{store: {kind: [seconds, ...]}} for the whole run; printed in the terminal summary and written out."""
    store = request.config.stash.get(MEASURED, None)
    if store is None:
        store = request.config.stash[MEASURED] = {}
        request.config.pluginmanager.register(Summary(store), "e2e2-revocation-summary")
    return store


class Summary:
    def __init__(self, data: dict):
        self.data = data

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if not self.data:
            return
        ARTIFACT.parent.mkdir(parents=True, exist_ok=True)
        report = {"poll_step_s": 0.02, "poll_max_s": POLL_MAX, "goal_s": GOAL, "measurements": self.data,
                  "summary": summarise(self.data)}
        ARTIFACT.write_text(json.dumps(report, indent=2, sort_keys=True))
        terminalreporter.section("e2e: revocation -> standalone outpost (seconds from the call's return)")
        for line in format_summary(report["summary"]):
            terminalreporter.write_line(line)
        terminalreporter.write_line(f"(also in {ARTIFACT.relative_to(ROOT)})")


def summarise(data: dict) -> dict:
    return {store: {kind: {"n": len(v), "min": min(v), "median": statistics.median(v), "max": max(v),
                           "all_under_goal": max(v) < GOAL}
                    for kind, v in kinds.items() if v}
            for store, kinds in data.items()}


def format_summary(summary: dict) -> list[str]:
    lines = []
    for store, kinds in sorted(summary.items()):
        for kind, s in sorted(kinds.items()):
            lines.append(f"  {store:6} {kind:18} n={s['n']} min={s['min']:.3f} median={s['median']:.3f} "
                         f"max={s['max']:.3f} {'< 1 s' if s['all_under_goal'] else '>= 1 s (over the goal)'}")
    return lines


def revoke(kind: str, stack: Stack, browser: Browser, user: dict) -> None:
    """Perform revocation ``kind`` for ``user`` (signed in with ``browser``); returns when the call returned."""
    if kind == "core_logout":
        # the invalidation flow through the executor API, with the browser's core session (as the logout
        # link): the GET asks, the JSON answer signs out (tests/flows/test_logout_confirmation.py)
        executor = stack.core_url + "/api/v3/flows/executor/default-invalidation-flow/"
        r = browser.get(executor, headers={"Accept": "application/json"})
        assert r.status_code == 200, f"logout flow: {r.status_code} {r.text[:300]}"
        assert r.json().get("component") == "xak-user-logout", r.text[:300]
        r = browser.post(executor, json={"component": "xak-user-logout"}, headers={"Accept": "application/json"})
        assert r.status_code in (200, 302), f"logout answer: {r.status_code} {r.text[:300]}"
    elif kind == "deactivate":
        stack.api("PATCH", f"/core/users/{user['pk']}/", json={"is_active": False})
    elif kind == "remove_from_group":
        stack.set_groups(user, [])
    elif kind == "delete_session":
        sessions = stack.api("GET", "/core/authenticated_sessions/", params={"user__username": user["username"]})
        assert len(sessions["results"]) == 1, sessions
        stack.api("DELETE", f"/core/authenticated_sessions/{sessions['results'][0]['uuid']}/")
    else:
        raise ValueError(f"revocation kind {kind!r}: one of {KINDS}")


@pytest.mark.parametrize("kind", KINDS)
def test_revocation_reaches_the_standalone_outpost(kind, stack, users, site, measured):
    delays = measured.setdefault(stack.store, {}).setdefault(kind, [])
    for round_ in range(ROUNDS):
        user = users[(kind, round_)]
        with Browser() as browser:
            sign_in(stack, site, browser, user["username"], PASSWORD)
            url = site.url(f"/after-{kind}")
            first = browser.get(url)
            assert first.status_code == 200, f"signed in, but {first.status_code} before the revocation"
            revoke(kind, stack, browser, user)
            started = time.monotonic()
            try:
                delay, answer = refusal_delay(lambda: browser.get(url), started)
            except AssertionError as exc:
                raise AssertionError(f"{kind} ({stack.store}, round {round_}): {exc}\n{stack.logs()}") from None
        delays.append(round(delay, 4))
        print(f"{stack.store} {kind} round {round_}: refused after {delay:.3f} s ({answer.status_code})")
    if kind == "core_logout":  # the core session really ended (not just the outpost's)
        assert stack.api("GET", "/core/authenticated_sessions/",
                         params={"user__username": user["username"]})["results"] == []
