"""``python -m bench outpost_link``: how long after a change an outpost serves it (the issue's goal: <= 1 s).

A real ``ak server`` and ``ak outpost proxy``; each round adds or removes an application's provider on the
outpost through the API and times, from the API answer, until forward auth for that host changes (polled
every 5 ms). Reference in the same run: the API PATCH round trip itself. Once without Redis (change table
and in-process hub) and once with Redis (pub/sub) when 127.0.0.1:6379 answers. No thresholds.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from tests.outposts.test_link_e2e import ADMIN_TOKEN, Outpost, admin_client, make_app, redis_available
from tests.support.server import start_core

ROUNDS = 20
GOAL_S = 1.0


def run(with_redis: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        core = start_core(Path(tmp) / "core", env={"AUTHENTIK_REDIS__HOST": "127.0.0.1" if with_redis else ""},
                          bootstrap_token=ADMIN_TOKEN)
        outpost = None
        try:
            with admin_client(core) as api:
                flow = api.get("/api/v3/flows/instances/", params={"designation": "authorization"}).json()
                flow = flow["results"][0]["pk"]
                first, second = make_app(api, flow, "whoami"), make_app(api, flow, "second")
                created = api.post("/api/v3/outposts/instances/", json={"name": "bench", "type": "proxy",
                                                                        "providers": [first]}).json()
                key = api.get(f"/api/v3/core/tokens/{created['token_identifier']}/view_key/").json()["key"]
                outpost = Outpost(Path(tmp), core.url, key)
                outpost.until(lambda: (outpost.ready() or {}).get("core_connected"), 30, "connected")
                patch_s, refresh_s = [], []
                for i in range(ROUNDS):
                    providers, want = ([first, second], 302) if i % 2 == 0 else ([first], 400)
                    started = time.perf_counter()
                    api.patch(f"/api/v3/outposts/instances/{created['pk']}/", json={"providers": providers})
                    answered = time.perf_counter()
                    while outpost.forward_auth("second.example.com") != want:
                        time.sleep(0.005)
                    patch_s.append(answered - started)
                    refresh_s.append(time.perf_counter() - answered)
                label = "redis" if with_redis else "no redis"
                print(f"[{label}] API PATCH round trip (reference): median {statistics.median(patch_s) * 1000:.0f} ms")
                print(f"[{label}] change -> outpost serves it: median {statistics.median(refresh_s) * 1000:.0f} ms, "
                      f"max {max(refresh_s) * 1000:.0f} ms over {ROUNDS} changes (goal <= {GOAL_S * 1000:.0f} ms)")
        finally:
            if outpost is not None:
                outpost.stop()
            core.stop()


def main() -> None:
    run(with_redis=False)
    if redis_available():
        run(with_redis=True)
    else:
        print("[redis] skipped: no Redis at 127.0.0.1:6379")
