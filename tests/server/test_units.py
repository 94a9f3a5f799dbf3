"""Pure pieces of the front process: the metrics decision, route classes, static lookup, TLS, readiness."""

import ipaddress

import pytest
from cryptography import x509

from core.metrics import Metrics, metrics_allowed, route_class
from core.server import Readiness, _static_file, initial_setup_url, static_roots
from protocols import tls
from protocols.trust import DEFAULT_TRUSTED_PROXY_CIDRS

DEFAULT_NETS = tuple(ipaddress.ip_network(c) for c in DEFAULT_TRUSTED_PROXY_CIDRS)


@pytest.mark.parametrize(("peer", "xff", "allowed"), [
    ("127.0.0.1", None, True),
    ("172.18.0.5", None, True),           # Prometheus on the same docker network
    ("10.1.2.3", None, True),
    ("::1", None, True),
    ("::ffff:127.0.0.1", None, True),     # a dual-stack listener's view of IPv4 loopback
    ("203.0.113.9", None, False),         # the internet
    ("2001:db8::1", None, False),
    ("203.0.113.9", "127.0.0.1", False),  # an outsider cannot claim to be local
    ("127.0.0.1", "203.0.113.9", False),  # relayed by a local proxy for an outsider
    ("127.0.0.1", "10.0.0.2, 172.16.0.3", True),
    ("127.0.0.1", "not-an-ip", False),    # unparsable: untrusted, refused (THREATS 3)
    ("", None, False),
    (None, None, False),
    ("garbage", None, False),
])
def test_metrics_allowed(peer, xff, allowed):
    assert metrics_allowed(peer, xff, DEFAULT_NETS) is allowed


def test_metrics_allowed_ignores_everything_but_addresses():
    assert metrics_allowed("10.0.0.1", None, [ipaddress.ip_network("192.168.0.0/16")]) is False
    assert metrics_allowed("127.0.0.1", None, []) is False


def test_route_classes_are_bounded():
    assert route_class("/-/health/ready/") == "health"
    assert route_class("/api/v3/flows/executor/default-authentication-flow/") == "flow_executor"
    assert route_class("/api/v3/core/users/") == "api"
    assert route_class("/if/admin/login/") == "admin"
    assert route_class("/outpost.goauthentik.io/auth/traefik") == "outpost"
    assert route_class("/random/" + "x" * 100) == "other"


def test_metrics_registry_is_per_instance():
    one, two = Metrics(), Metrics()
    one.observe("/-/health/live/", "GET", 200, 0.001)
    one.observe("/x", "BREW", 418, 0.001)
    assert b'route="health"' in one.render()[0] and b'method="other"' in one.render()[0]
    assert b'route="health"' not in two.render()[0]


def test_static_lookup_refuses_escapes():
    roots = static_roots()
    assert any(r.name == "static" and r.parent.name == "admin" for r in roots)
    assert _static_file(roots, "admin/css/base.css").name == "base.css"
    assert _static_file(roots, "gatehouse.css") is not None
    for bad in ("../settings.py", "admin/../../__init__.py", "/etc/passwd", "admin\\css\\base.css",
                ".hidden", "", "a\x00b"):
        assert _static_file(roots, bad) is None, bad


def test_static_lookup_refuses_symlink_out_of_root(tmp_path):
    root = tmp_path / "static"
    root.mkdir()
    (tmp_path / "secret.txt").write_text("no")
    (root / "link.txt").symlink_to(tmp_path / "secret.txt")
    (root / "ok.txt").write_text("yes")
    assert _static_file((root.resolve(),), "link.txt") is None
    assert _static_file((root.resolve(),), "ok.txt") == (root / "ok.txt").resolve()


def test_certificate_is_made_once_and_renewed_when_unusable(tmp_path):
    pem = tls.ensure_certificate(tmp_path / "certs")
    first = tls.fingerprint(pem)
    assert tls.fingerprint(tls.ensure_certificate(tmp_path / "certs")) == first
    cert = x509.load_pem_x509_certificate(pem.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert tls.server_context(pem) is not None
    pem.write_text("garbage")
    assert tls.fingerprint(tls.ensure_certificate(tmp_path / "certs")) != first
    assert list((tmp_path / "certs").iterdir()) == [pem]  # no temporary files left behind


@pytest.mark.django_db
def test_readiness_on_a_migrated_database():
    readiness = Readiness()
    try:
        # Run in the executor thread, as the server does.
        assert readiness.executor.submit(readiness.check_sync).result(30) is None
        assert readiness.migrated is True
    finally:
        readiness.close()  # closes the thread's DB connection (PostgreSQL drops the test DB after)


@pytest.mark.django_db
def test_readiness_names_an_unreachable_redis():
    from tests.support.server import free_port

    readiness = Readiness(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    try:
        reason = readiness.executor.submit(readiness.check_sync).result(30)
        assert reason.startswith("redis unreachable: ") and "AUTHENTIK_REDIS__HOST" in reason, reason
        assert readiness.executor.submit(readiness.check_sync).result(30) == reason  # the same, checked again
    finally:
        readiness.close()


def test_initial_setup_url_names_a_reachable_host(settings):
    assert initial_setup_url(settings.CONFIG).endswith(f":{settings.CONFIG.listen_http.port}/if/flow/initial-setup/")
    assert "0.0.0.0" not in initial_setup_url(settings.CONFIG)


# --- authentik's metric names (issue 8 item 15): the pure pieces -------------------------------------------


def test_authentik_class_paths_for_our_models_and_stage_views():
    from core.accounts.models import Application
    from core.flows.models import Flow, FlowStageBinding
    from core.flows.stages.password import PasswordStageView
    from core.metrics import class_path, stage_type
    from core.providers.proxy.models import ProxyProvider

    assert class_path(Application) == "authentik.core.models.Application"
    assert class_path(Flow) == "authentik.flows.models.Flow"
    assert class_path(FlowStageBinding) == "authentik.flows.models.FlowStageBinding"
    assert class_path(ProxyProvider) == "authentik.providers.proxy.models.ProxyProvider"
    assert stage_type(PasswordStageView) == "authentik.stages.password.stage.PasswordStageView"


def test_main_request_duration_by_destination_leaves_out_health_and_metrics():
    metrics = Metrics()
    metrics.observe("/-/health/live/", "GET", 200, 0.001)
    metrics.observe("/metrics", "GET", 200, 0.001)
    metrics.observe("/api/v3/core/users/", "GET", 200, 0.002)
    metrics.observe("/outpost.goauthentik.io/auth/nginx", "GET", 401, 0.003, "embedded_outpost")
    text = metrics.render()[0].decode()
    assert 'authentik_main_request_duration_seconds_count{dest="core"} 1.0' in text
    assert 'authentik_main_request_duration_seconds_count{dest="embedded_outpost"} 1.0' in text
    assert 'authentik_main_requests_sum{dest="embedded_outpost"} 3e+06' in text  # nanoseconds, as authentik's
    buckets = [line.split('le="')[1].split('"')[0] for line in text.splitlines()
               if line.startswith('authentik_main_request_duration_seconds_bucket{dest="core"')]
    assert buckets == ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]


def test_outposts_connected_and_last_update_stay_bounded():
    from prometheus_client import CollectorRegistry

    from core.metrics import OutpostLinkMetrics

    registry = CollectorRegistry()
    link = OutpostLinkMetrics(registry)

    def value(name, **labels):
        return registry.get_sample_value(name, {"tenant": "public", **labels})

    link.connected("proxy", "uid-1", "1")
    link.connected("proxy", "uid-1", "1")  # the same instance twice (a reconnect before the old socket closed)
    assert value("authentik_outposts_connected", outpost="proxy", uid="uid-1", expected="1") == 2
    link.disconnected("proxy", "uid-1", "1")
    assert value("authentik_outposts_connected", outpost="proxy", uid="uid-1", expected="1") == 1
    link.disconnected("proxy", "uid-1", "1")
    assert value("authentik_outposts_connected", outpost="proxy", uid="uid-1", expected="1") is None  # gone
    link.disconnected("proxy", "never-connected", "1")  # harmless
    for index in range(OutpostLinkMetrics.LAST_UPDATE_KEEP + 10):
        link.hello("proxy", f"uid-{index}", "0.1.0", now=1000.0 + index)
    kept = [s for m in registry.collect() if m.name == "authentik_outposts_last_update" for s in m.samples]
    assert len(kept) == OutpostLinkMetrics.LAST_UPDATE_KEEP
    assert value("authentik_outposts_last_update", outpost="proxy", uid="uid-0", version="0.1.0") is None
    newest = OutpostLinkMetrics.LAST_UPDATE_KEEP + 9
    assert value("authentik_outposts_last_update", outpost="proxy", uid=f"uid-{newest}", version="0.1.0") == 1000.0 + newest
