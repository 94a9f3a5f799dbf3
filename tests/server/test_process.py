"""``ak server`` as a user runs it: a subprocess on free 127.0.0.1 ports, talked to with real clients."""

import json
import re
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.server.conftest import ADMIN_PASSWORD, ADMIN_TOKEN
from tests.support.server import REPO, core_env, free_port, start_core


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One core for the read-mostly tests of this module."""
    core = start_core(tmp_path_factory.mktemp("core"), bootstrap_password=ADMIN_PASSWORD,
                      bootstrap_token=ADMIN_TOKEN)
    yield core
    core.stop()


# A server-rendered Django page with a form (the login flow's; Django's admin login form is never served).
LOGIN_PAGE = "/if/flow/default-authentication-flow/"


def csrf_token(page: httpx.Response) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)


def flow_login(client: httpx.Client, password: str) -> httpx.Response:
    """Log akadmin in through the flow page's forms (no JavaScript); the answer that ends the password step."""
    url = LOGIN_PAGE + "?next=/if/admin/"
    client.post(url, data={"csrfmiddlewaretoken": csrf_token(client.get(url)), "component": "ak-stage-identification",
                           "uid_field": "akadmin"})
    answer = client.post(url, data={"csrfmiddlewaretoken": csrf_token(client.get(url)),
                                    "component": "ak-stage-password", "password": password})
    if answer.status_code == 302 and answer.headers["location"] == url:
        answer = client.get(url)  # post/redirect/get: the stages that need no input (MFA skipped, login) run here
    return answer


def access_lines(core):
    lines = []
    for raw in core.output().splitlines():
        if raw.startswith("{"):
            record = json.loads(raw)
            if record.get("logger") == "gatehouse.access":
                lines.append(record)
    return lines


# --- health --------------------------------------------------------------------------------------


def test_live_and_ready_answer_get_and_head(shared):
    for path in ("/-/health/live/", "/-/health/ready/"):
        response = httpx.get(shared.url + path)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok"}
        assert httpx.head(shared.url + path).status_code == 200


def test_health_matches_on_path_only_never_user_agent(shared):
    """THREATS 9 (oauth2-proxy GHSA-5hvv-m4w4-gf6v): a probe's User-Agent opens nothing."""
    for agent in ("kube-probe/1.29", "GoogleHC/1.0", "ELB-HealthChecker/2.0", "Consul Health Check"):
        live = httpx.get(shared.url + "/-/health/live/", headers={"User-Agent": agent})
        assert live.status_code == 200
        other = httpx.get(shared.url + "/if/admin/", headers={"User-Agent": agent})
        assert other.status_code == 302 and "/login/" in other.headers["location"]  # still asks to log in
        assert httpx.get(shared.url + "/ping", headers={"User-Agent": agent}).status_code == 404
    # Near-miss paths are not health paths.
    assert httpx.get(shared.url + "/-/health/live/x").status_code == 404
    assert httpx.get(shared.url + "/-/HEALTH/live/").status_code == 404


def test_ready_is_503_until_migrations_are_applied(core_factory):
    core = core_factory(args=("--no-prepare",), wait="/-/health/live/")
    response = httpx.get(core.url + "/-/health/ready/")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and "migrations not applied" in body["reason"]
    migrate = subprocess.run([sys.executable, "-m", "core.cli", "migrate", "--skip-checks"], cwd=REPO, env=core.env,
                             capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stderr
    core.wait("/-/health/ready/", timeout=30)
    assert httpx.get(core.url + "/-/health/ready/").json() == {"status": "ok"}


def test_ready_is_503_when_the_database_is_unreachable(core_factory):
    dead = {"AUTHENTIK_POSTGRESQL__HOST": "127.0.0.1", "AUTHENTIK_POSTGRESQL__PORT": str(free_port()),
            "AUTHENTIK_POSTGRESQL__USER": "nobody", "AUTHENTIK_POSTGRESQL__NAME": "nothing"}
    core = core_factory(env=dead, args=("--no-prepare",), wait="/-/health/live/")
    response = httpx.get(core.url + "/-/health/ready/")
    assert response.status_code == 503
    assert response.json()["reason"].startswith("database unreachable")
    assert httpx.get(core.url + "/-/health/live/").status_code == 200  # alive, just not ready


def test_start_fails_with_a_message_when_the_database_is_unreachable(tmp_path):
    env = core_env(tmp_path, {"AUTHENTIK_POSTGRESQL__HOST": "127.0.0.1", "AUTHENTIK_POSTGRESQL__PORT": str(free_port())})
    result = subprocess.run([sys.executable, "-m", "core.cli", "server", "--wait", "1"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert "AUTHENTIK_POSTGRESQL__HOST:PORT=127.0.0.1:" in result.stderr and "within 1 s" in result.stderr
    assert "Traceback" not in result.stderr


# --- metrics -------------------------------------------------------------------------------------


def test_metrics_on_the_metrics_listener(shared):
    httpx.get(shared.url + "/-/health/live/")
    response = httpx.get(shared.metrics_url)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    assert 'gatehouse_http_requests_total{method="GET",route="health",status="200"}' in text
    assert "gatehouse_http_request_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text
    # Only /metrics lives there: Django is not reachable through the metrics port.
    assert httpx.get(shared.metrics_url.replace("/metrics", "/if/admin/login/")).status_code == 404


def test_metrics_on_main_listener_for_trusted_clients_only(shared):
    assert httpx.get(shared.url + "/metrics").status_code == 200  # 127.0.0.1 is in the trusted CIDRs
    # Relayed by a (trusted) local proxy for an outside client: refused, and never via Django.
    relayed = httpx.get(shared.url + "/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
    assert relayed.status_code == 404 and "gatehouse_http" not in relayed.text
    broken = httpx.get(shared.url + "/metrics", headers={"X-Forwarded-For": "not-an-ip"})
    assert broken.status_code == 404


def test_metrics_refused_on_main_listener_when_loopback_not_trusted(core_factory):
    core = core_factory(env={"AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS": "10.0.0.0/8"})
    assert httpx.get(core.url + "/metrics").status_code == 404
    assert httpx.get(core.url + "/metrics", headers={"User-Agent": "Prometheus/2.53"}).status_code == 404
    assert httpx.get(core.metrics_url).status_code == 200


# --- TLS -----------------------------------------------------------------------------------------


def _peer_certificate(port: int) -> bytes:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            return tls.getpeercert(binary_form=True)


def test_https_self_signed_and_kept_across_restarts(core_factory):
    core = core_factory()
    with pytest.raises(httpx.ConnectError):  # not trusted by a verifying client: it is self-signed
        httpx.get(core.https_url + "/-/health/live/")
    response = httpx.get(core.https_url + "/-/health/ready/", verify=False)
    assert response.status_code == 200
    assert (core.data_dir / "certs" / "self-signed.pem").is_file()
    assert oct((core.data_dir / "certs" / "self-signed.pem").stat().st_mode & 0o777) == "0o600"
    first = _peer_certificate(core.https_port)
    core.restart()
    assert _peer_certificate(core.https_port) == first
    # Django sees the scheme of the listener: the login page is served over TLS too.
    assert httpx.get(core.https_url + LOGIN_PAGE, verify=False).status_code == 200


# --- the Django bridge ---------------------------------------------------------------------------


def test_login_page_and_static_css(shared):
    page = httpx.get(shared.url + LOGIN_PAGE)
    assert page.status_code == 200 and "<form" in page.text
    css_paths = re.findall(r'href="(/static/[^"]+\.css)"', page.text)
    assert css_paths, page.text[:500]
    css = httpx.get(shared.url + css_paths[0])
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "max-age=" in css.headers["cache-control"]
    etag = css.headers["etag"]
    assert httpx.get(shared.url + css_paths[0], headers={"If-None-Match": etag}).status_code == 304
    assert httpx.get(shared.url + "/static/gatehouse.css").status_code == 200  # core/web/static
    assert httpx.get(shared.url + "/static/rest_framework/css/default.css").status_code == 200
    for escape in ("/static/../settings.py", "/static/%2e%2e/core/settings.py", "/static/admin/../../__init__.py",
                   "/static/.hidden", "/static/nope.css"):
        assert httpx.get(shared.url + escape).status_code == 404, escape


def test_post_body_reaches_django(shared):
    # No CSRF cookie: Django refuses, which it can only do after reading the request.
    assert httpx.post(shared.url + LOGIN_PAGE, data={"component": "ak-stage-identification",
                                                     "uid_field": "a"}).status_code == 403
    with httpx.Client(base_url=shared.url) as client:
        wrong = flow_login(client, "wrong")
        assert wrong.status_code == 200 and "Invalid password" in wrong.text  # the form was read and checked


def test_login_sets_cookies_and_redirects(shared):
    with httpx.Client(base_url=shared.url) as client:
        answer = flow_login(client, ADMIN_PASSWORD)
        assert answer.status_code == 302 and answer.headers["location"] == "/if/admin/"
        cookies = answer.headers.get_list("set-cookie")
        names = {c.split("=", 1)[0] for c in cookies}
        assert {"authentik_session", "authentik_csrf"} <= names, cookies  # both Set-Cookie headers survive
        assert client.get("/if/admin/").status_code == 200


def lines_for(core, agent, count=1):
    """Access lines of requests sent with User-Agent ``agent`` (the line is written just after the answer)."""
    deadline = time.monotonic() + 10
    while True:
        lines = [line for line in access_lines(core) if line.get("user_agent") == agent]
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_one_json_access_line_per_request_without_query(shared):
    agent = f"probe/{uuid.uuid4()}"
    httpx.get(shared.url + LOGIN_PAGE + "?token=do-not-log-me", headers={"User-Agent": agent})
    httpx.get(shared.url + "/-/health/live/?token=do-not-log-me-either", headers={"User-Agent": agent})
    time.sleep(0.2)  # a third line, if one were written, would be there by now
    lines = lines_for(shared, agent, 2)
    assert len(lines) == 2, lines
    admin, live = lines
    assert admin["method"] == "GET" and admin["path"] == LOGIN_PAGE and admin["status"] == 200
    assert admin["client"] == "127.0.0.1" and admin["event"] == "request"
    assert admin["host"] == f"127.0.0.1:{shared.http_port}" and isinstance(admin["duration_ms"], float)
    assert live["path"] == "/-/health/live/" and live["status"] == 200
    assert "do-not-log-me" not in shared.output()


def test_access_line_client_is_the_socket_peer(shared):
    """The logged client is the socket peer, whatever X-Forwarded-For says (test_bridge checks REMOTE_ADDR)."""
    agent = f"xff/{uuid.uuid4()}"
    response = httpx.get(shared.url + LOGIN_PAGE, headers={"X-Forwarded-For": "198.51.100.7", "User-Agent": agent})
    assert response.status_code == 200
    assert [line["client"] for line in lines_for(shared, agent)] == ["127.0.0.1"]


def test_bootstrap_token_lists_akadmin(shared):
    response = httpx.get(shared.url + "/api/v3/core/users/", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200, response.text
    assert "akadmin" in [user["username"] for user in response.json()["results"]]
    refused = httpx.get(shared.url + "/api/v3/core/users/", headers={"Authorization": "Bearer wrong-token-value"})
    assert refused.status_code in (401, 403)


# --- start and stop ------------------------------------------------------------------------------


def test_bad_listen_variable_exits_with_one_message(tmp_path):
    env = core_env(tmp_path, {"AUTHENTIK_LISTEN__HTTP": "nope"})
    result = subprocess.run([sys.executable, "-m", "core.cli", "server"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "AUTHENTIK_LISTEN__HTTP='nope'" in result.stderr
    assert "Traceback" not in result.stderr


def test_busy_port_exits_naming_the_variable(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        env = core_env(tmp_path, {"AUTHENTIK_LISTEN__HTTPS": f"127.0.0.1:{port}"})
        result = subprocess.run([sys.executable, "-m", "core.cli", "server", "--no-prepare"], cwd=REPO, env=env,
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    assert f"cannot listen on AUTHENTIK_LISTEN__HTTPS=127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_first_start_without_admin_prints_initial_setup_url(core_factory):
    core = core_factory()
    assert f"http://127.0.0.1:{core.http_port}/if/flow/initial-setup/" in core.output()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_on_signal(core_factory, sig):
    core = core_factory()
    core.process.send_signal(sig)
    try:
        code = core.process.wait(30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"ak server did not stop within 30 s of signal {sig.name}:\n{core.tail()}")
    assert code == 0, core.tail()
    assert "shutting down" in core.output()
    with pytest.raises(httpx.ConnectError):
        httpx.get(core.url + "/-/health/live/")


def test_second_start_with_data_present(core_factory):
    core = core_factory(bootstrap_password=ADMIN_PASSWORD)
    core.restart()
    assert httpx.get(core.url + "/-/health/ready/").status_code == 200
    assert "bootstrap: akadmin present" in core.output()


def test_debugger_flag_without_debugpy_is_reported(core_factory):
    try:
        import debugpy  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("debugpy is installed here; it would listen on the fixed port 9901")
    core = core_factory(env={"AUTHENTIK_DEBUGGER": "true"})
    assert "debugpy is not installed" in core.output()



def test_database_connections_are_reused_and_bounded(shared):
    """Django runs on a fixed pool of AUTHENTIK_WEB__THREADS threads (core/wsgi.py): each keeps its
    connection, so 30 requests open only a handful of sessions, and the open ones stay bounded."""
    if not shared.database:
        pytest.skip("PostgreSQL only: SQLite connections are files, not server sessions")
    import psycopg

    env = shared.env

    def pg(sql: str):
        with psycopg.connect(host=env["AUTHENTIK_POSTGRESQL__HOST"],
                             port=int(env.get("AUTHENTIK_POSTGRESQL__PORT") or 5432),
                             user=env.get("AUTHENTIK_POSTGRESQL__USER"),
                             password=env.get("AUTHENTIK_POSTGRESQL__PASSWORD") or None, dbname="postgres") as conn:
            return conn.execute(sql, (shared.database,)).fetchone()[0]

    with httpx.Client(base_url=shared.url) as client:
        assert flow_login(client, ADMIN_PASSWORD).status_code == 302
        before = pg("SELECT sessions FROM pg_stat_database WHERE datname = %s")
        for _ in range(30):
            assert client.get("/if/admin/jsi18n/").status_code == 200  # loads the user from the DB
        opened = pg("SELECT sessions FROM pg_stat_database WHERE datname = %s") - before
    count = pg("SELECT count(*) FROM pg_stat_activity WHERE datname = %s")
    threads = 4  # AUTHENTIK_WEB__THREADS default
    assert opened <= threads, f"30 requests opened {opened} database sessions: connections are not reused"
    # the pool's threads, the readiness check, the outpost hub and the embedded outpost's link
    assert count <= threads + 4, f"{count} connections open after 30 requests"


async def test_concurrent_requests_all_answered(shared):
    """50 requests at once (bounded): Django, static and health answers all arrive whole."""
    import asyncio

    paths = [LOGIN_PAGE, "/static/admin/css/base.css", "/-/health/ready/", "/nope/"] * 12 + ["/metrics"] * 2
    async with httpx.AsyncClient(base_url=shared.url, timeout=30) as client:
        answers = await asyncio.gather(*(client.get(path) for path in paths))
    expected = {LOGIN_PAGE: 200, "/static/admin/css/base.css": 200, "/-/health/ready/": 200,
                "/nope/": 404, "/metrics": 200}
    assert [a.status_code for a in answers] == [expected[p] for p in paths]
    sizes = {len(a.content) for a, p in zip(answers, paths) if p == "/static/admin/css/base.css"}
    assert len(sizes) == 1
