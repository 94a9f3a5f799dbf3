"""The standalone outpost's environment (README "Standalone outpost" table), each variable set on a real
``ak outpost proxy`` and its effect observed from outside.

Where the other tests already observe a variable it is not repeated here: AUTHENTIK_HOST, AUTHENTIK_TOKEN and the
HTTP and metrics listeners (every OutpostProcess), AUTHENTIK_LOG_LEVEL (tests/server/test_debug_log.py),
AUTHENTIK_LISTEN__LDAP/__LDAPS (tests/outposts/test_ldap_e2e.py), AUTHENTIK_LISTEN__RADIUS/__RADIUS_ACCOUNTING
(tests/outposts/radius/test_radius_e2e.py), AUTHENTIK_OUTPOST_STATE_DIR (the session snapshot across a restart,
tests/e2e/test_proxy_mode.py; the certificate, here). AUTHENTIK_REDIS__PASSWORD is not: the shared Redis has none.

One ``ak server`` for the module (with a standalone outpost made through the API); each test starts its own
``ak outpost proxy`` subprocesses with the same outpost token and the variables under test.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from cryptography import x509

from outpost.app import TLS_DIR
from protocols import tls
from protocols.version import VERSION
from tests.conftest import need
from tests.e2e.support.browser import Browser
from tests.e2e.support.stack import Stack, login, redis_available, until
from tests.e2e.support.upstream import header_values
from tests.support.outpost import OutpostProcess
from tests.support.server import free_port

pytestmark = pytest.mark.e2e

FORWARD_URL = "https://fwd.env.test"
PROXIED_HOST = "proxied.env.test"
PASSWORD = "Correct-Horse-env-7!"  # noqa: S105 - a test password
REDIS_DB = 11  # this suite's own database on the shared Redis
TRUSTED_PEER = "127.0.0.2"  # a loopback address of its own: the only trusted proxy in the narrowed test


@pytest.fixture(scope="module")
def stack(stack_factory, upstream) -> Stack:
    stack = stack_factory(standalone=True)
    stack.add_app("envfwd", FORWARD_URL)
    stack.add_app("envproxy", f"http://{PROXIED_HOST}", mode="proxy", internal_host=upstream.url,
                  skip_path_regex="^/public/.*")
    return stack


@pytest.fixture
def outposts(stack, tmp_path) -> Iterator:
    """``outposts(**env)`` -> a started and connected ``ak outpost proxy`` with the stack's outpost token and
    ``env``; all are stopped at teardown."""
    started: list[OutpostProcess] = []

    def start(**env: str) -> OutpostProcess:
        outpost = OutpostProcess(tmp_path / f"outpost-{len(started)}", stack.core.url, stack.standalone.token,
                                 browser_host=stack.browser_url, env=env)
        started.append(outpost)
        outpost.start()
        outpost.wait_connected()
        return outpost

    yield start
    for outpost in started:
        outpost.stop()


def client(source: str | None = None) -> httpx.Client:
    """An HTTP client whose connections come from ``source`` (a local address), else from 127.0.0.1."""
    transport = httpx.HTTPTransport(local_address=source) if source else None
    return httpx.Client(transport=transport, timeout=10, follow_redirects=False)


def test_trusted_proxy_cidrs_narrowed_to_one_address(outposts):
    """AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS=127.0.0.2/32: forwarded headers from 127.0.0.1 (loopback and a
    default trusted range, so the defaults would trust it) are refused or ignored; from 127.0.0.2 they count."""
    outpost = outposts(AUTHENTIK_LISTEN__TRUSTED_PROXY_CIDRS=f"{TRUSTED_PEER}/32")
    traefik = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "fwd.env.test", "X-Forwarded-Uri": "/",
               "X-Forwarded-Method": "GET"}
    nginx = {"X-Original-URL": FORWARD_URL + "/"}
    with client() as untrusted, client(TRUSTED_PEER) as trusted:
        # forward auth (X-Forwarded-Proto/-Host/-Uri, X-Original-URL): refused from an untrusted peer
        answer = untrusted.get(outpost.url + "/outpost.goauthentik.io/auth/traefik", headers=traefik)
        assert answer.status_code == 400 and "untrusted" in answer.text, outpost.tail()
        assert untrusted.get(outpost.url + "/outpost.goauthentik.io/auth/nginx", headers=nginx).status_code == 400
        assert trusted.get(outpost.url + "/outpost.goauthentik.io/auth/traefik", headers=traefik).status_code == 302
        assert trusted.get(outpost.url + "/outpost.goauthentik.io/auth/nginx", headers=nginx).status_code == 401

        # proxy mode: X-Forwarded-Host finds the application only from a trusted peer
        by_forwarded_host = {"Host": "elsewhere.env.test", "X-Forwarded-Host": PROXIED_HOST}
        assert untrusted.get(outpost.url + "/public/x", headers=by_forwarded_host).status_code == 400
        seen = trusted.get(outpost.url + "/public/x", headers=by_forwarded_host)
        assert seen.status_code == 200 and seen.headers.get("X-Upstream") == "echo", seen.text

        # proxy mode: X-Forwarded-For is replaced by the peer, X-Forwarded-Proto ignored, from an untrusted peer
        forwarded = {"Host": PROXIED_HOST, "X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        upstream = untrusted.get(outpost.url + "/public/x", headers=forwarded).json()
        assert header_values(upstream, "X-Forwarded-For") == ["127.0.0.1"]
        assert header_values(upstream, "X-Forwarded-Proto") == ["http"]
        upstream = trusted.get(outpost.url + "/public/x", headers=forwarded).json()
        assert header_values(upstream, "X-Forwarded-For") == [f"203.0.113.7, {TRUSTED_PEER}"]
        assert header_values(upstream, "X-Forwarded-Proto") == ["https"]


def served_certificate(url: str) -> x509.Certificate:
    """The certificate the TLS listener at ``url`` presents (not verified)."""
    parts = urlsplit(url)
    return x509.load_pem_x509_certificate(ssl.get_server_certificate((parts.hostname, parts.port)).encode())


def trusting(pem: Path) -> ssl.SSLContext:
    """A client context that trusts exactly the certificate in ``pem``."""
    return ssl.create_default_context(cafile=str(pem))


def test_https_listener_self_signed_and_configured(outposts, tmp_path):
    """AUTHENTIK_LISTEN__HTTPS is served: with a self-signed certificate made into the state directory (kept
    across a restart), or with AUTHENTIK_PROXY__TLS_CERT_FILE's. Forward auth answers there as on HTTP."""
    outpost = outposts()
    made = outpost.workdir / TLS_DIR / tls.FILE_NAME
    assert made.is_file(), outpost.tail()
    traefik = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "fwd.env.test", "X-Forwarded-Uri": "/",
               "X-Forwarded-Method": "GET"}
    with httpx.Client(verify=trusting(made), timeout=10) as https:
        assert https.get(outpost.https_url + "/outpost.goauthentik.io/ping").status_code == 204
        assert https.get(outpost.https_url + "/outpost.goauthentik.io/auth/traefik",
                         headers=traefik).status_code == 302
        assert https.get(outpost.https_url + "/-/health/ready/").json()["configured"] is True
    first = served_certificate(outpost.https_url)
    outpost.restart()
    assert served_certificate(outpost.https_url) == first  # kept in the state directory, not made again

    own = tmp_path / "own.pem"
    own.write_bytes(tls.self_signed_pem(("127.0.0.1",), common_name="operator certificate"))
    configured = outposts(AUTHENTIK_PROXY__TLS_CERT_FILE=str(own))
    with httpx.Client(verify=trusting(own), timeout=10) as https:
        assert https.get(configured.https_url + "/outpost.goauthentik.io/ping").status_code == 204
    assert not (configured.workdir / TLS_DIR).exists()


def test_ldap_tls_cert_file(stack, tmp_path):
    """AUTHENTIK_LDAP__TLS_CERT_FILE: the LDAPS listener of ``ak outpost ldap`` presents that certificate."""
    own = tmp_path / "ldap.pem"
    own.write_bytes(tls.self_signed_pem(("127.0.0.1",), common_name="operator LDAP certificate"))
    ldaps = free_port()
    outpost = OutpostProcess(tmp_path / "ldap", stack.core.url, stack.standalone.token, kind="ldap", env={
        "AUTHENTIK_LISTEN__LDAP": f"127.0.0.1:{free_port()}", "AUTHENTIK_LISTEN__LDAPS": f"127.0.0.1:{ldaps}",
        "AUTHENTIK_LDAP__TLS_CERT_FILE": str(own)})
    outpost.start()
    try:
        # the listeners open at start, configured or not (this token is a proxy outpost's: no LDAP providers)
        until(lambda: outpost.process.poll() is None and "ldap listening" in outpost.tail(), 30,
              "LDAP listeners", outpost.tail)
        presented = served_certificate(f"ldaps://127.0.0.1:{ldaps}")
        assert presented == x509.load_pem_x509_certificate(own.read_bytes())
    finally:
        outpost.stop()


def test_insecure_host_browser_redis_and_meta_version(stack, upstream, tmp_path):
    """One ``ak outpost proxy`` with AUTHENTIK_HOST on the core's HTTPS listener (self-signed) and
    AUTHENTIK_INSECURE=true, AUTHENTIK_HOST_BROWSER and AUTHENTIK_REDIS__HOST/__PORT/__DB: it connects, sends
    browsers to AUTHENTIK_HOST_BROWSER, completes a login (the token call goes to the core over HTTPS too),
    keeps the session in that Redis database, and the upstream gets X-authentik-meta-version (the package's
    version). Beside it, the same without AUTHENTIK_INSECURE never connects and says what to set."""
    need(redis_available(), "Redis at 127.0.0.1:6379")
    import redis

    db = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_DB)
    for key in db.scan_iter("gatehouse:proxy:*"):
        db.delete(key)
    core_https = f"https://127.0.0.1:{stack.core.https_port}/"
    browser_host = f"http://127.0.0.1:{stack.core.http_port}"  # not the outpost's authentik_host (localhost)
    outpost = OutpostProcess(tmp_path / "insecure", core_https, stack.standalone.token, env={
        "AUTHENTIK_INSECURE": "true", "AUTHENTIK_HOST_BROWSER": browser_host, "AUTHENTIK_REDIS__HOST": "127.0.0.1",
        "AUTHENTIK_REDIS__PORT": "6379", "AUTHENTIK_REDIS__DB": str(REDIS_DB)})
    strict = OutpostProcess(tmp_path / "strict", core_https, stack.standalone.token)
    app = stack.add_app("envlogin", f"http://app.test:{outpost.port}", mode="proxy",
                        internal_host=f"http://{upstream.address}", wait=False)
    stack.user("erin", PASSWORD)
    outpost.start()
    strict.start()
    try:
        outpost.wait_connected()
        with Browser() as browser:
            result = login(browser, app.external_url + "/page", "erin", PASSWORD)
        assert result.login_page.startswith(browser_host + "/"), result.login_page
        assert result.response.status_code == 200 and result.response.headers.get("X-Upstream") == "echo", \
            f"{result.response.status_code} {result.response.text[:300]}\n{outpost.tail()}"
        echoed = result.response.json()
        assert header_values(echoed, "X-authentik-username") == ["erin"]
        assert header_values(echoed, "X-authentik-meta-version") == [f"goauthentik.io/outpost/{VERSION}"]
        assert list(db.scan_iter("gatehouse:proxy:s:*")), "no session in Redis db 11"

        until(lambda: "AUTHENTIK_INSECURE=true" in strict.tail(), 30, "the link names AUTHENTIK_INSECURE",
              strict.tail)
        assert strict.ready() is None  # never configured: the core's certificate is not trusted
    finally:
        outpost.stop()
        strict.stop()
        for key in db.scan_iter("gatehouse:proxy:*"):
            db.delete(key)


def test_workers_serve_https_with_one_certificate(stack, tmp_path):
    """``--workers 2`` (with Redis, as it requires): both processes listen on AUTHENTIK_LISTEN__HTTPS with the one
    self-signed certificate made before they start."""
    need(redis_available(), "Redis at 127.0.0.1:6379")
    outpost = OutpostProcess(tmp_path / "workers", stack.core.url, stack.standalone.token, workers=2,
                             redis_db=REDIS_DB)
    outpost.start()
    try:
        outpost.wait_connected()
        until(lambda: outpost.log.read_text(errors="replace").count('"outpost listening"') == 2, 30,
              "two workers listening", outpost.tail)
        made = x509.load_pem_x509_certificate((outpost.workdir / TLS_DIR / tls.FILE_NAME).read_bytes())
        seen = {served_certificate(outpost.https_url) for _ in range(16)}  # new connections: either worker
        assert seen == {made}
    finally:
        outpost.stop()
