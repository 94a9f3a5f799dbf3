"""A private Redis Sentinel set for failover tests: a master, a replica and three ``redis-server --sentinel``
processes, each on a free 127.0.0.1 port in a temporary directory (never the machine's shared Redis), no
persistence. Sentinel's timings are set low (down after 500 ms, failover timeout 3 s) so a failover ends
within seconds; ``stop()`` ends every process it started."""

from __future__ import annotations

import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.postgres import wait_port
from tests.support.server import free_port

MASTER_NAME = "gatehouse"
DOWN_AFTER_MS = 500
FAILOVER_TIMEOUT_MS = 3000
QUORUM = 2


def available() -> bool:
    return shutil.which("redis-server") is not None


@dataclass
class SentinelSet:
    workdir: Path
    sentinel_count: int = 3
    password: str = ""  # the master's and the replica's requirepass (and masterauth)
    sentinel_password: str = ""  # the sentinels' own requirepass
    master_port: int = field(default_factory=free_port)
    replica_port: int = field(default_factory=free_port)
    sentinel_ports: list[int] = field(default_factory=list)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False)

    def url(self, db: int = 0) -> str:
        """AUTHENTIK_REDIS__URL for this set."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        auth = f":{self.password}@" if self.password else ""
        more = f"&sentinelpassword={self.sentinel_password}" if self.sentinel_password else ""
        return f"redis+sentinel://{auth}{hosts}/{db}?mastername={MASTER_NAME}{more}"

    def client(self, port: int, db: int = 0):
        """A plain client of one server of the set (the master's or the replica's port)."""
        import redis

        return redis.Redis(host="127.0.0.1", port=port, db=db, password=self.password or None, socket_timeout=2)

    def _sentinel_client(self, port: int):
        import redis

        return redis.Redis(host="127.0.0.1", port=port, password=self.sentinel_password or None, socket_timeout=2)

    def _redis(self, name: str, port: int, *more: str) -> None:
        directory = self.workdir / name
        directory.mkdir(parents=True, exist_ok=True)
        log = directory / "log"
        if self.password:
            more = ("--requirepass", self.password, "--masterauth", self.password, *more)
        self.processes[name] = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(directory), "--logfile", str(log), *more])
        wait_port(port, f"redis-server {name}", self.processes[name], log)

    def start(self) -> SentinelSet:
        self._redis("master", self.master_port)
        self._redis("replica", self.replica_port, "--replicaof", "127.0.0.1", str(self.master_port))
        for index in range(self.sentinel_count):
            port = free_port()
            directory = self.workdir / f"sentinel{index}"
            directory.mkdir(parents=True, exist_ok=True)
            conf = directory / "sentinel.conf"  # Sentinel rewrites its file: one each
            conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {directory}\nlogfile {directory / 'log'}\n"
                            f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master_port} {QUORUM}\n"
                            f"sentinel down-after-milliseconds {MASTER_NAME} {DOWN_AFTER_MS}\n"
                            f"sentinel failover-timeout {MASTER_NAME} {FAILOVER_TIMEOUT_MS}\n"
                            + (f"sentinel auth-pass {MASTER_NAME} {self.password}\n" if self.password else "")
                            + (f"requirepass {self.sentinel_password}\nsentinel sentinel-pass {self.sentinel_password}\n"
                               if self.sentinel_password else ""))
            self.processes[f"sentinel{index}"] = subprocess.Popen(["redis-server", str(conf), "--sentinel"])
            wait_port(port, "redis sentinel", self.processes[f"sentinel{index}"], directory / "log")
            self.sentinel_ports.append(port)
        self.wait_replicated()
        return self

    def master_addresses(self) -> set[tuple[str, int]]:
        """What the sentinels answer now, each (they agree some moments after a failover: the leader first)."""
        answers = set()
        for port in self.sentinel_ports:
            client = self._sentinel_client(port)
            try:
                host, master = client.sentinel_get_master_addr_by_name(MASTER_NAME)
                answers.add((host.decode() if isinstance(host, bytes) else host, int(master)))
            finally:
                client.close()
        return answers

    def wait_replicated(self, bound: float = 30.0) -> None:
        """Until the replica is in sync and every sentinel knows it (a failover needs both)."""
        deadline = time.monotonic() + bound
        replica = self.client(self.replica_port)
        try:
            while True:
                linked = replica.info("replication").get("master_link_status") == "up"
                known = all(self._sentinel_client(p).sentinel_slaves(MASTER_NAME) for p in self.sentinel_ports)
                if linked and known:
                    return
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replica not in sync / not known to the sentinels within {bound:.0f} s")
                time.sleep(0.1)
        finally:
            replica.close()

    def kill_master(self) -> None:
        process = self.processes["master"]
        process.kill()  # SIGKILL
        process.wait(10)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
