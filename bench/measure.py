"""Small measuring helpers the benchmarks share: percentiles, a process's RSS and CPU time from /proc, and an
HTTP answer that must have succeeded."""

from __future__ import annotations

import os
from pathlib import Path

import httpx


def pct(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile (0..1) of ``values``; NaN for none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def rss_mb(pid: int) -> float:
    """VmRSS of one process, in MB (NaN when /proc does not say)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(*pids: int) -> float:
    """utime + stime of these processes (/proc/<pid>/stat fields 14 and 15), in seconds."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def ok(response: httpx.Response) -> dict:
    """The JSON of a 1xx/2xx answer ({} when empty); anything else raises with the request and the answer."""
    if response.status_code >= 300:
        raise RuntimeError(f"{response.request.method} {response.request.url}: {response.status_code} "
                           f"{response.text[:300]}")
    return response.json() if response.content else {}
